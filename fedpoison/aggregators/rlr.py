"""RLR, the robust learning rate (Ozdayi, Kantarcioglu & Gel, AAAI 2021, §4, Eq. 4;
official ``aggregation.py`` ``compute_robustLR``). REFERENCES D38.

Per coordinate ``k`` the server's learning rate is signed by how many clients agree on the
direction of the update::

    η_k = +η  if |Σ_i sign(Δ_{i,k})| ≥ θ,   else −η
    w ← w + η ⊙ mean(Δ)

- ``θ`` is an **integer count** of agreeing clients, not a fraction (``theta_fraction``
  resolves ``⌈θ_f·n⌉`` per round instead). ``sign(0) = 0`` counts for neither side.
- The rule returns ``s ⊙ mean(Δ)`` with ``s_k = ±1``; the server's ``training.server_lr``
  is the paper's ``η`` (official default 1).
- The official ``avg`` aggregate is weighted by the clients' data sizes; fedpoison averages
  uniformly, since the clients report those sizes themselves (only ``fedavg`` reads them).
  The official ``comed``/``sign`` aggregates are not offered.
- ``θ > n`` negates every coordinate, so training diverges: :meth:`RLR.check` refuses it.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from fedpoison.aggregators._common import check_f, check_updates, uniform
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext


def rlr_signs(updates: torch.Tensor, theta: int) -> torch.Tensor:
    """The per-coordinate sign ``s`` ``(d,)`` of the learning rate: +1 where at least
    ``theta`` more clients push one way than the other, −1 elsewhere."""
    agreement = torch.sign(updates).sum(dim=0).abs()
    one = torch.ones((), dtype=updates.dtype, device=updates.device)
    return torch.where(agreement >= theta, one, -one)


def rlr(updates: torch.Tensor, theta: int) -> torch.Tensor:
    """``s ⊙ mean(Δ)`` ``(d,)``: the mean update with the coordinates that fewer than
    ``theta`` clients agree on reversed.

    Example: on the first coordinate the signs are (+, +, −), |Σ| = 1 < θ = 2, so the mean
    1/3 is reversed; the second coordinate is unanimous.

        >>> import torch
        >>> from fedpoison.aggregators import rlr
        >>> x = torch.tensor([[1.0, 1.0], [1.0, 2.0], [-1.0, 3.0]])
        >>> [round(v, 4) for v in rlr(x, theta=2).tolist()]
        [-0.3333, 2.0]
    """
    n = check_updates(updates, "rlr")
    check_f("rlr", n, 0, 0 <= theta <= n, f"0 ≤ θ ≤ n (θ={theta})")
    return rlr_signs(updates, theta) * updates.mean(dim=0)


@AGGREGATORS.register("rlr")
class RLR(Aggregator):
    """Robust learning rate on the uniform mean. No client is rejected: weights are 1/n
    (the sign flips are per coordinate, so the aggregate is not ``weights @ updates``).

    Args:
        theta: θ, the number of agreeing clients a coordinate needs to keep its sign
            (official: 4 for 10 clients on Fashion-MNIST, 8 for 40 on CIFAR-10).
        theta_fraction: if set, θ = ⌈theta_fraction·n⌉ for the round's n rows instead.
    """

    paper: ClassVar[str] = "Ozdayi et al. 2021"
    requirement: ClassVar[str] = "n ≥ θ"
    scale_equivariant: ClassVar[bool] = True
    bounded_influence: ClassVar[bool] = False  # a mean with signs: huge rows drive it

    def __init__(self, theta: int = 4, theta_fraction: float | None = None) -> None:
        if theta_fraction is not None and not 0.0 <= theta_fraction <= 1.0:
            raise ValueError(f"rlr: theta_fraction must be in [0, 1], got {theta_fraction}")
        if theta < 0:
            raise ValueError(f"rlr: theta must be ≥ 0, got {theta}")
        self.theta, self.theta_fraction = int(theta), theta_fraction

    def threshold(self, n: int) -> int:
        """θ for a round of ``n`` rows."""
        if self.theta_fraction is None:
            return self.theta
        return math.ceil(self.theta_fraction * n - 1e-9)

    def check(self, n: int, f: int) -> None:
        theta = self.threshold(n)
        check_f(self.name, n, f, n >= max(1, theta), f"n ≥ θ = {theta}")

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        n = check_updates(updates, self.name)
        theta = self.threshold(n)
        signs = rlr_signs(updates, theta)
        aggregate = signs * updates.mean(dim=0)
        flipped = float((signs < 0).to(torch.float64).mean())
        return AggregationResult(aggregate, uniform(n, updates), {"flipped": flipped})
