"""Centered clipping (Karimireddy, He & Jaggi, ICML 2021; official ``Clipping`` class).

State ``v`` = the previous round's aggregate (0 at the start). For ``l = 0…L−1``::

    v ← v + (1/n) Σ_i (g_i − v) · min(1, τ / ‖g_i − v‖)

and ``v`` is both the output and the next round's centre. When ``‖g_i − v‖ = 0`` the scale is 1
(the official code divides by zero there). Defaults τ = 100, L = 1 (official code, ByzFL).
The paper's guarantees assume worker momentum, which is a client-side setting, not part of
this rule. docs/conventions.md §C12.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from fedpoison.aggregators._common import check_updates, uniform
from fedpoison.aggregators._linalg import clip_factors
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext


def centered_clipping(
    updates: torch.Tensor,
    center: torch.Tensor | None,
    tau: float = 100.0,
    iters: int = 1,
) -> torch.Tensor:
    """``iters`` centred-clipping steps from ``center`` (``None`` = 0); returns the new ``v``.

    Example: from 0 with τ = 10 the far row (norm 100) enters with factor 0.1, so
    ``v = ((1, 0) + (0, 1) + (10, 0))/3``.

        >>> import torch
        >>> from fedpoison.aggregators import centered_clipping
        >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [100.0, 0.0]])
        >>> [round(v, 4) for v in centered_clipping(x, None, tau=10.0).tolist()]
        [3.6667, 0.3333]
    """
    n = check_updates(updates, "centered_clipping")
    if tau <= 0 or iters < 1:
        raise ValueError(
            f"centered_clipping: needs tau > 0 and iters ≥ 1, got n={n}, tau={tau}, iters={iters}"
        )
    v = torch.zeros_like(updates[0]) if center is None else center.to(updates)
    if v.shape != updates[0].shape:
        raise ValueError(
            f"centered_clipping: center has shape {tuple(v.shape)}, "
            f"rows have {tuple(updates[0].shape)}"
        )
    for _ in range(iters):
        diff = updates - v
        v = v + (clip_factors(diff, tau) / n) @ diff
    return v


@AGGREGATORS.register("centered_clipping")
class CenteredClipping(Aggregator):
    """Centered clipping; the centre ``v`` is state (``state_dict``), reset to 0 when the
    dimension changes. No client is rejected, so weights are uniform 1/n (each clipped
    difference ``g_i − v`` enters the step with weight 1/n).

    Args:
        tau: clipping radius τ.
        iters: clipping iterations L per round.
    """

    paper: ClassVar[str] = "Karimireddy et al. 2021"
    requirement: ClassVar[str] = "n ≥ 1 (theory: f/n below a constant, with worker momentum)"
    unanimous: ClassVar[bool] = False  # only within τ of the centre

    def __init__(self, tau: float = 100.0, iters: int = 1) -> None:
        self.tau, self.iters = tau, iters
        self.center: torch.Tensor | None = None

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        center = self.center
        if center is not None and center.shape != updates[0].shape:
            center = None
        v = centered_clipping(updates, center, self.tau, self.iters)
        self.center = v.detach().clone()
        return AggregationResult(v, uniform(updates.shape[0], updates))

    def state_dict(self) -> dict[str, Any]:
        return {"center": None if self.center is None else self.center.clone()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        center = state.get("center")
        self.center = None if center is None else center.clone()
