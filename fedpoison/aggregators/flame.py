"""FLAME (Nguyen et al., USENIX Security 2022, Algorithm 1).

1. Cosine distances ``c_ij = 1 − cos(W_i, W_j)`` of the local MODELS ``W_i = G + Δ_i``
   (``G`` = ``ctx.global_weights``), clustered by HDBSCAN(min_cluster_size = ⌊n/2⌋+1,
   min_samples = 1, allow_single_cluster = True) on the precomputed distances. With that
   minimum size there is at most one cluster; its members are admitted, the noise points
   rejected.
2. ``e_i = ‖Δ_i‖`` and the bound ``S_t = median(e_1..e_n)`` over **all** n clients (even n →
   mean of the two middle norms).
3. Admitted deltas are clipped, ``Δ_i · min(1, S_t/e_i)``, and averaged.
4. Gaussian noise ``N(0, σ²)``, ``σ = λ·S_t``, is added to every coordinate, drawn from
   ``ctx.generator``; λ = (1/ε)·√(2 ln(1.25/δ)) ≈ 0.001 for images (ε=3705, δ=1e-5), 0.01 NLP.

If nobody is admitted the mean is zero (``info["skipped"] = 1``) and only noise is added.
docs/conventions.md §C15. Zero-norm models have cosine 0 (distance 1) to every model.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

import torch

from fedpoison.aggregators._common import check_f, check_updates, require
from fedpoison.aggregators._linalg import clip_factors, cosine_matrix, row_norms
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext


@functools.cache
def _hdbscan() -> Any:
    """scikit-learn's ``HDBSCAN``, imported on first use: importing scikit-learn's clustering
    costs ~1.5 s, so :class:`Flame` imports it when built, before round 1 (not inside round 1's
    aggregation time), and runs without FLAME never pay it."""
    from sklearn.cluster import HDBSCAN

    return HDBSCAN


def flame_admitted(updates: torch.Tensor, global_weights: torch.Tensor) -> torch.Tensor:
    """Boolean mask ``(n,)`` of the clients in the HDBSCAN cluster of the local models."""
    n = updates.shape[0]
    g = global_weights.to(updates).reshape(-1)
    check_updates(g.reshape(1, -1), "flame (global_weights)")
    distance = (1.0 - cosine_matrix(updates, shift=g)).clamp_min(0.0)
    distance.fill_diagonal_(0.0)
    labels = (
        _hdbscan()(
            metric="precomputed",
            min_cluster_size=n // 2 + 1,
            min_samples=1,
            allow_single_cluster=True,
            copy=True,
        )
        .fit(distance.cpu().numpy())
        .labels_
    )
    labels_t = torch.as_tensor(labels, device=updates.device)
    if bool((labels_t < 0).all()):
        return torch.zeros(n, dtype=torch.bool, device=updates.device)
    largest = torch.bincount(labels_t[labels_t >= 0]).argmax()
    return labels_t == largest


def flame_coefficients(updates: torch.Tensor, admitted: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``(c, S_t)``: the clipped mean is ``c @ updates`` with ``c_i = min(1, S_t/e_i)/|A|`` on
    the admitted clients; ``S_t = 0`` (a majority of zero updates) clips every row to 0."""
    bound = float(torch.quantile(row_norms(updates), 0.5))  # median; even n → midpoint
    if bound <= 0 or not bool(admitted.any()):
        return torch.zeros(updates.shape[0], dtype=updates.dtype, device=updates.device), bound
    factors = clip_factors(updates, bound) * admitted.to(updates.dtype)
    return factors / int(admitted.sum()), bound


def flame(
    updates: torch.Tensor,
    global_weights: torch.Tensor,
    lam: float = 0.001,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FLAME's aggregate delta ``(d,)`` (noise included) and the admitted mask ``(n,)``.

    ``generator`` is required when ``lam > 0``.
    """
    n = check_updates(updates, "flame")
    check_f("flame", n, 0, n >= 2, "n ≥ 2")
    admitted = flame_admitted(updates, global_weights)
    coefficients, bound = flame_coefficients(updates, admitted)
    aggregate = coefficients @ updates
    if lam > 0:
        g = require(generator, "flame", "a torch.Generator for the noise (lam > 0)")
        noise = torch.randn(updates.shape[1], generator=g, device=g.device, dtype=updates.dtype)
        aggregate = aggregate + (lam * bound) * noise.to(updates.device)
    return aggregate, admitted


@AGGREGATORS.register("flame")
class Flame(Aggregator):
    """FLAME; needs ``ctx.global_weights`` and ``ctx.generator``. Weights are
    ``1/|admitted|`` on the admitted clients (weights of their clipped deltas), 0 on the rest.

    Args:
        lam: noise level λ (σ = λ·S_t); 0 disables the noise.
    """

    paper: ClassVar[str] = "Nguyen et al. 2022"
    requirement: ClassVar[str] = "n ≥ 2, n ≥ 2f+1"
    scale_equivariant: ClassVar[bool] = True
    rejects_far_rows: ClassVar[bool] = True
    deterministic: ClassVar[bool] = False

    def __init__(self, lam: float = 0.001) -> None:
        self.lam = lam
        _hdbscan()

    def check(self, n: int, f: int) -> None:
        check_f(self.name, n, f, n >= max(2, 2 * f + 1), f"n ≥ 2 and n ≥ 2f+1 = {2 * f + 1}")

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        g = require(ctx.global_weights, self.name, "ctx.global_weights (it clusters W_i = G + Δ_i)")
        aggregate, admitted = flame(updates, g, self.lam, ctx.generator)
        k = int(admitted.sum())
        weights = admitted.to(updates.dtype) / max(k, 1)
        info = {"admitted": float(k)} | ({"skipped": 1.0} if k == 0 else {})
        return AggregationResult(aggregate, weights, info)
