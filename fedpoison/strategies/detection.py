"""Detection metrics: how the defense's rejections line up with the (hidden) ground truth."""

from __future__ import annotations

import math

import torch


def detection_metrics(rejected: torch.Tensor, malicious: torch.Tensor) -> dict[str, float]:
    """Counts and rates for boolean masks ``rejected`` and ``malicious`` over one round's rows.

    Positive = rejected. precision = TP/(TP+FP), recall = TP/(TP+FN), fpr = FP/(FP+TN);
    a rate with an empty denominator is NaN (e.g. recall in a round with no attacker).
    """
    rejected, malicious = rejected.bool().cpu(), malicious.bool().cpu()
    tp = int((rejected & malicious).sum())
    fp = int((rejected & ~malicious).sum())
    fn = int((~rejected & malicious).sum())
    tn = int((~rejected & ~malicious).sum())

    def ratio(a: int, b: int) -> float:
        return a / b if b else math.nan

    return {
        "tp": tp,
        "fp": fp,
        "fn": fn,
        "tn": tn,
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "fpr": ratio(fp, fp + tn),
    }
