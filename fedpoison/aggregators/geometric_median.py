"""Geometric median by smoothed Weiszfeld — RFA (Pillutla et al., IEEE TSP 2022, Alg. 2).

Target ``argmin_z Σ_i α_i ‖z − g_i‖`` (α = normalised ``weights``, uniform by default). From
``z⁰`` run ``iters`` steps of ``z ← Σ_i β_i g_i / Σ_i β_i`` with ``β_i = α_i / max(ν, ‖z − g_i‖)``.
The initialisation matters with only a few steps (docs/conventions.md §C11): ``init="mean"``
(default) starts at the weighted mean, ``"zero"`` at 0 (FLPoison, ByzFL, Karimireddy),
``"previous"`` at ``previous`` (the last round's aggregate, kept by the class). Golden: rows
[[1,2,3],[4,5,6],[7,8,9]], ν=0.1, 3 steps, zero init → (3.7879, 4.7879, 5.7879); mean init →
(4, 5, 6).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from fedpoison.aggregators._common import check_f, check_updates
from fedpoison.aggregators._linalg import row_norms, work_dtype
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext
from fedpoison.aggregators.mean import normalised_weights

INITS = ("mean", "zero", "previous")


def weiszfeld(
    updates: torch.Tensor,
    iters: int = 3,
    nu: float = 1e-6,
    init: str = "mean",
    previous: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The estimate ``(d,)`` and its mixing coefficients ``(n,)`` (estimate = coefficients @
    updates; for ``iters=0`` the coefficients are those of the initial point, 0 for zero init)."""
    n = check_updates(updates, "geometric_median")
    if init not in INITS or iters < 0 or nu <= 0:
        raise ValueError(
            f"geometric_median: needs init in {INITS}, iters ≥ 0 and nu > 0, "
            f"got init={init!r}, iters={iters}, nu={nu}"
        )
    alpha = normalised_weights(weights, n, updates, "geometric_median").to(work_dtype(updates))
    if init == "mean":
        coef, z = alpha, alpha.to(updates.dtype) @ updates
    elif init == "zero":
        coef, z = torch.zeros_like(alpha), torch.zeros_like(updates[0])
    else:
        if previous is None or previous.shape != updates[0].shape:
            raise ValueError("geometric_median: init='previous' needs previous of shape (d,)")
        coef, z = torch.zeros_like(alpha), previous.to(updates)
    for _ in range(iters):
        beta = alpha / row_norms(updates - z).clamp_min(nu)
        coef = beta / beta.sum()
        z = coef.to(updates.dtype) @ updates
    return z, coef.to(updates.dtype)


def geometric_median(
    updates: torch.Tensor,
    iters: int = 3,
    nu: float = 1e-6,
    init: str = "mean",
    previous: torch.Tensor | None = None,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Smoothed-Weiszfeld geometric median ``(d,)`` after ``iters`` steps from ``init``.

    Example: three steps from zero have not reached the geometric median of three collinear
    points (the middle one); from the mean they are already there.

        >>> import torch
        >>> from fedpoison.aggregators import geometric_median
        >>> x = torch.tensor([[1, 2, 3], [4, 5, 6], [7, 8, 9]], dtype=torch.float64)
        >>> [round(v, 4) for v in geometric_median(x, nu=0.1, init="zero").tolist()]
        [3.7879, 4.7879, 5.7879]
        >>> [round(v, 4) for v in geometric_median(x, nu=0.1, init="mean").tolist()]
        [4.0, 5.0, 6.0]
    """
    return weiszfeld(updates, iters, nu, init, previous, weights)[0]


@AGGREGATORS.register("geometric_median")
class GeometricMedian(Aggregator):
    """RFA. Weights are the last Weiszfeld step's coefficients ``β_i/Σβ`` (the aggregate is
    exactly ``weights @ updates``); no client is rejected outright. Client-reported example
    counts are ignored (α uniform). With ``init="previous"`` the last aggregate is state
    (zero before the first round).

    Args:
        iters: Weiszfeld steps R.
        nu: smoothing ν (RFA 1e-6; ByzFL/Karimireddy 0.1).
        init: ``mean`` | ``zero`` | ``previous``.
    """

    paper: ClassVar[str] = "Pillutla et al. 2022"
    requirement: ClassVar[str] = "n ≥ 2f+1"
    translation_equivariant: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    bounded_influence: ClassVar[bool] = False
    aggregate_is_weighted_sum: ClassVar[bool] = True

    def __init__(self, iters: int = 3, nu: float = 1e-6, init: str = "mean") -> None:
        if init not in INITS:
            raise ValueError(f"{self.name}: init must be one of {INITS}, got {init!r}")
        self.iters, self.nu, self.init = iters, nu, init
        self.previous: torch.Tensor | None = None

    def check(self, n: int, f: int) -> None:
        check_f(self.name, n, f, n >= 2 * f + 1, f"n ≥ 2f+1 = {2 * f + 1}")

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        previous = self.previous
        if self.init == "previous" and (previous is None or previous.shape != updates[0].shape):
            previous = torch.zeros_like(updates[0])
        z, coef = weiszfeld(updates, self.iters, self.nu, self.init, previous)
        if self.init == "previous":
            self.previous = z.detach().clone()
        return AggregationResult(z, coef)

    def state_dict(self) -> dict[str, Any]:
        return {"previous": None if self.previous is None else self.previous.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        previous = state.get("previous")
        self.previous = None if previous is None else previous.clone()
