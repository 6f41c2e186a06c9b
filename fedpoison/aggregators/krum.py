"""Krum (Blanchard et al., NeurIPS 2017, §4).

For i ≠ j write i→j when g_j is among the **n−f−2** rows closest to g_i (g_i itself
excluded). ``score(i) = Σ_{i→j} ‖g_i − g_j‖²`` with **squared** Euclidean distances, and
Krum returns the row of lowest score; ties (equal up to floating-point rounding) go to the
lowest index. Requires ``n ≥ 2f+3`` (the paper's ``2f+2 < n``). docs/conventions.md §C7.
ByzFL's ``Krum(f)`` scores by the mean of the **n−f−1** nearest squared distances, which is
this rule with ``f − 1``: ``krum(x, f − 1)`` returns ByzFL's row (docs/aggregators.md).

All distances come from one Gram matrix (:class:`PairwiseSquaredDistances`), never from a
loop over pairs. For float32 updates that Gram matrix is a float32 draft; the few rows whose
rank it cannot settle are recomputed in float64, so the selection is the exact one.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.aggregators._common import (
    check_f,
    check_shape,
    check_updates,
    checked,
    lowest,
    undecided,
)
from fedpoison.aggregators._linalg import PairwiseSquaredDistances
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext


def check_krum(rule: str, n: int, f: int) -> None:
    """Krum's precondition ``n ≥ 2f+3``."""
    check_f(rule, n, f, n >= 2 * f + 3, f"n ≥ 2f+3 = {2 * f + 3}")


def scores_from_distances(
    pd: PairwiseSquaredDistances, neighbours: int, removed: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(scores, errors)``: each row's sum of its ``neighbours`` smallest scaled distances to
    other rows (rows in ``removed`` excluded as neighbours), and its rounding bound."""
    d = pd.scaled.clone()
    if removed is not None:
        d[:, removed] = float("inf")
    d.fill_diagonal_(float("inf"))
    values, rows = torch.topk(d, neighbours, dim=1, largest=False)
    return values.sum(dim=1), pd.errors(rows)


def lowest_scores(
    pd: PairwiseSquaredDistances, neighbours: int, m: int, removed: torch.Tensor | None = None
) -> torch.Tensor:
    """Boolean mask of the ``m`` rows (outside ``removed``) of lowest Krum score, ties → lowest
    index. Rows too close to the boundary to decide from draft distances are refined first,
    so the mask is the one exact distances give."""
    while True:
        scores, errors = scores_from_distances(pd, neighbours, removed)
        if removed is not None:
            scores = scores.masked_fill(removed, float("inf"))
        unsure = undecided(scores, m, errors) & ~pd.exact
        if not bool(unsure.any()):
            return lowest(scores, m, errors)
        pd.refine(unsure)


def krum_scores(updates: torch.Tensor, f: int) -> torch.Tensor:
    """Krum scores ``(n,)``: sum of squared distances to the ``n−f−2`` nearest other rows.

    Returned in float64 (float32 on devices without it) so that huge rows do not overflow.
    """
    n = check_updates(updates, "krum")
    check_krum("krum", n, f)
    pd = PairwiseSquaredDistances(updates)
    return scores_from_distances(pd, n - f - 2)[0] * (pd.scale * pd.scale)


def krum_select(updates: torch.Tensor, f: int, m: int, rule: str) -> torch.Tensor:
    """Boolean mask ``(n,)`` of the ``m`` rows with the lowest Krum scores (computed once,
    ties → lowest index). Shared by Krum and Multi-Krum."""
    n = check_shape(updates, rule)
    check_krum(rule, n, f)
    if not 1 <= m <= n:
        raise ValueError(f"{rule}: needs 1 ≤ m ≤ n, got n={n}, f={f}, m={m}")
    pd = PairwiseSquaredDistances(updates, draft=True)
    checked(pd.sq, updates, rule)  # squared norms carry any NaN/Inf: no separate pass
    return lowest_scores(pd, n - f - 2, m)


def krum_index(updates: torch.Tensor, f: int) -> int:
    """Index of the row Krum selects."""
    return int(krum_select(updates, f, 1, "krum").nonzero()[0, 0])


def krum(updates: torch.Tensor, f: int) -> torch.Tensor:
    """Krum aggregate ``(d,)``: a copy of the lowest-score row (n−f−2 nearest, squared).

    Example: every inlier scores 1 + 1 = 2, the outlier 162 + 181 = 343; the tie among the
    inliers goes to the lowest index.

        >>> import torch
        >>> from fedpoison.aggregators import krum, krum_scores
        >>> g = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [10.0, 10.0]])
        >>> krum_scores(g, f=1).tolist()
        [2.0, 2.0, 2.0, 2.0, 343.0]
        >>> krum(g, f=1).tolist()
        [0.0, 0.0]
    """
    return updates[krum_index(updates, f)].clone()


@AGGREGATORS.register("krum")
class Krum(Aggregator):
    """Krum; weights are one-hot on the selected client (every other client is rejected)."""

    paper: ClassVar[str] = "Blanchard et al. 2017"
    requirement: ClassVar[str] = "n ≥ 2f+3"
    translation_equivariant: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    rejects_far_rows: ClassVar[bool] = True
    aggregate_is_weighted_sum: ClassVar[bool] = True

    def check(self, n: int, f: int) -> None:
        check_krum(self.name, n, f)

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        i = krum_index(updates, ctx.f)
        weights = torch.zeros(updates.shape[0], dtype=updates.dtype, device=updates.device)
        weights[i] = 1.0
        return AggregationResult(updates[i].clone(), weights)
