"""SignGuard (Xu, Huang, Zhang, Wu, ICDCS 2022, "Byzantine-robust Federated Learning through
Collaborative Malicious Gradient Filtering", arXiv:2109.05872; official ``signguard_multiclass``).

1. Norm filter: ``r_i = ‖Δ_i‖``, ``M = median_i r_i`` over all n rows (even n → midpoint);
   ``S₁ = {i : 0.1·M < r_i < 3·M}`` (strict).
2. Sign clustering: one random block of ``k = ⌊0.1·d⌋`` contiguous coordinates, start drawn
   uniformly from ``{0, …, d − k − 1}`` (``ctx.generator``); per row the fractions of
   positive, zero and negative entries in the block, each divided by its maximum over rows
   (+1e-8); these 3-D features are clustered by MeanShift (bandwidth =
   ``estimate_bandwidth(quantile=0.5, n_samples=50)``, ``bin_seeding=True``,
   ``cluster_all=False``) or, with ``clustering="dbscan"``, DBSCAN(eps = 0.05,
   min_samples = 2). ``S₂`` = the largest cluster, orphans excluded (ties: MeanShift's first
   cluster; for DBSCAN, whose cluster numbers follow the row order, the one holding the
   lexicographically smallest feature row, so that the rule is permutation invariant).
3. Every row is clipped to norm ``min(r_i, M)``; the aggregate is the mean of the clipped rows
   in ``S = S₁ ∩ S₂``. Weights are ``1/|S|`` on ``S`` and 0 elsewhere; an empty ``S`` gives a
   zero aggregate (``info["skipped"] = 1``).

Conventions. The paper's constants are not verified; these are the official code's. The
official code takes signs of gradients; deltas swap the positive and negative features, which
only permutes the feature axes (MeanShift and DBSCAN do not care). It clips to
``torch.median`` (the lower median for even n) but filters with ``numpy.median`` (the
midpoint); both use the midpoint here (docs/conventions.md §C8). Departures where the official
code breaks: ``k = max(1, ⌊0.1·d⌋)`` (it divides by ``k = 0`` when ``d < 10``), the start is 0
when ``d − k = 0``, a zero row is clipped to itself (it divides by its zero norm), no cluster
(every point an orphan) gives an empty ``S₂`` (``np.argmax`` of nothing raises there), and a
zero bandwidth (more than half the features identical) keeps the largest group of identical
features, the limit of MeanShift as the bandwidth shrinks (scikit-learn refuses 0). The
official bandwidth estimate subsamples 50 rows with ``random_state=0``; here the 50 are drawn
from ``ctx.generator`` over the features in lexicographic order, so the rule stays
permutation invariant. FLPoison uses DBSCAN with ``min_samples = 3`` and assumes full
participation. The variants with a similarity or distance feature (SignGuard-Sim/-Dist) are
not implemented.
"""

from __future__ import annotations

import warnings
from typing import ClassVar, Literal

import numpy as np
import torch

from fedpoison.aggregators._common import check_updates, require
from fedpoison.aggregators._linalg import clip_factors, row_norms
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext

Clustering = Literal["meanshift", "dbscan"]
BANDWIDTH_SAMPLES = 50
"""Rows the official bandwidth estimate uses (``estimate_bandwidth(n_samples=50)``)."""


def norm_filter(norms: torch.Tensor, lower: float, upper: float) -> tuple[torch.Tensor, float]:
    """``(S₁ mask, M)``: rows with ``lower·M < r_i < upper·M``, ``M`` the midpoint median."""
    bound = float(torch.quantile(norms, 0.5))
    return (norms > lower * bound) & (norms < upper * bound), bound


def sign_features(updates: torch.Tensor, start: int, k: int) -> torch.Tensor:
    """``(n, 3)`` float64 fractions of positive, zero and negative entries in columns
    ``start … start+k−1``, each column divided by its maximum over rows plus 1e-8."""
    block = updates[:, start : start + k]
    positive, negative = (block > 0).sum(1), (block < 0).sum(1)  # finite: the rest are zeros
    counts = torch.stack([positive, k - positive - negative, negative], dim=1)
    fractions = counts.to(torch.float64) / k
    return fractions / (fractions.max(dim=0).values + 1e-8)


def _largest_label(labels: np.ndarray, features: np.ndarray | None = None) -> np.ndarray:
    """Mask of the most frequent non-negative label; none when all are −1. Ties go to the
    first label, or with ``features`` to the cluster holding the lexicographically smallest
    feature row (DBSCAN numbers its clusters in row order; MeanShift's order is already
    canonical: by density, then by centre)."""
    kept = labels[labels >= 0]
    if kept.size == 0:
        return np.zeros(labels.shape, dtype=bool)
    counts = np.bincount(kept)
    tied = np.flatnonzero(counts == counts.max())
    if features is None or tied.size == 1:
        return np.asarray(labels == int(tied[0]))
    smallest = [min(map(tuple, features[labels == c].tolist())) for c in tied]
    return np.asarray(labels == int(tied[smallest.index(min(smallest))]))


def meanshift_cluster(features: np.ndarray, generator: torch.Generator) -> np.ndarray:
    """Mask of the largest MeanShift cluster of ``features`` ``(n, 3)`` (module docstring)."""
    from sklearn.cluster import MeanShift, estimate_bandwidth  # scikit-learn: ~1.5 s import

    n = features.shape[0]
    sample = features
    if n > BANDWIDTH_SAMPLES:
        order = np.lexsort(features.T[::-1])
        perm = torch.randperm(n, generator=generator, device=generator.device).cpu().numpy()
        sample = features[order[perm[:BANDWIDTH_SAMPLES]]]
    bandwidth = float(estimate_bandwidth(sample, quantile=0.5))
    if bandwidth <= 0:
        _, groups, counts = np.unique(features, axis=0, return_inverse=True, return_counts=True)
        return np.asarray(groups.reshape(-1) == int(np.argmax(counts)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "binning failed, using data points"
        labels = MeanShift(bandwidth=bandwidth, bin_seeding=True, cluster_all=False).fit(features)
    return _largest_label(labels.labels_)


def dbscan_cluster(features: np.ndarray, eps: float, min_samples: int) -> np.ndarray:
    """Mask of the largest DBSCAN cluster of ``features`` (orphans excluded)."""
    from sklearn.cluster import DBSCAN

    labels = DBSCAN(eps=eps, min_samples=min_samples).fit(features).labels_
    return _largest_label(labels, features)


def signguard(
    updates: torch.Tensor,
    generator: torch.Generator,
    *,
    lower: float = 0.1,
    upper: float = 3.0,
    fraction: float = 0.1,
    clustering: Clustering = "meanshift",
    eps: float = 0.05,
    min_samples: int = 2,
) -> tuple[torch.Tensor, torch.Tensor]:
    """SignGuard's aggregate ``(d,)`` and kept mask ``S`` ``(n,)`` (module docstring); the
    block start (and the bandwidth subsample when ``n > 50``) come from ``generator``."""
    check_updates(updates, "signguard")
    d = updates.shape[1]
    norms = row_norms(updates)
    by_norm, bound = norm_filter(norms, lower, upper)
    k = max(1, int(fraction * d))
    start = int(torch.randint(0, max(d - k, 1), (1,), generator=generator, device=generator.device))
    features = sign_features(updates, start, k).cpu().numpy()
    if clustering == "meanshift":
        by_sign = meanshift_cluster(features, generator)
    else:
        by_sign = dbscan_cluster(features, eps, min_samples)
    kept = by_norm & torch.as_tensor(by_sign, device=updates.device)
    size = int(kept.sum())
    coefficients = clip_factors(updates, bound) * kept.to(updates.dtype) / max(size, 1)
    return coefficients @ updates, kept


@AGGREGATORS.register("signguard")
class SignGuard(Aggregator):
    """SignGuard; needs ``ctx.generator`` (block choice, bandwidth subsample). Weights are
    ``1/|S|`` on the kept clients, 0 on the rest; ``f`` is not used.

    Args:
        lower, upper: the norm filter's bounds relative to the median norm (0.1, 3.0).
        fraction: the share of coordinates in the sign block (0.1).
        clustering: ``meanshift`` (official default) | ``dbscan``.
        eps, min_samples: DBSCAN's parameters (official 0.05, 2; FLPoison uses 3).
    """

    paper: ClassVar[str] = "Xu et al. 2022"
    requirement: ClassVar[str] = "n ≥ 1 (no bound on f; needs the round's generator)"
    scale_equivariant: ClassVar[bool] = True
    rejects_far_rows: ClassVar[bool] = True
    deterministic: ClassVar[bool] = False

    def __init__(
        self,
        lower: float = 0.1,
        upper: float = 3.0,
        fraction: float = 0.1,
        clustering: Clustering = "meanshift",
        eps: float = 0.05,
        min_samples: int = 2,
    ) -> None:
        if clustering not in ("meanshift", "dbscan"):
            raise ValueError(f"signguard: clustering must be meanshift|dbscan, got {clustering!r}")
        if not 0 <= lower < upper:
            raise ValueError(f"signguard: needs 0 ≤ lower < upper, got {lower}, {upper}")
        if not 0 < fraction <= 1:
            raise ValueError(f"signguard: fraction must be in (0, 1], got {fraction}")
        self.lower, self.upper, self.fraction = float(lower), float(upper), float(fraction)
        self.clustering: Clustering = clustering
        self.eps, self.min_samples = float(eps), int(min_samples)

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        g = require(ctx.generator, self.name, "a torch.Generator (ctx.generator) for its block")
        aggregate, kept = signguard(
            updates,
            g,
            lower=self.lower,
            upper=self.upper,
            fraction=self.fraction,
            clustering=self.clustering,
            eps=self.eps,
            min_samples=self.min_samples,
        )
        size = int(kept.sum())
        weights = kept.to(updates.dtype) / max(size, 1)
        info = {"kept": float(size)} | ({"skipped": 1.0} if size == 0 else {})
        return AggregationResult(aggregate, weights, info)
