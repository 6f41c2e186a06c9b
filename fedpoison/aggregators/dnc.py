"""Divide-and-Conquer (Shejwalkar & Houmansadr, NDSS 2021, §V, Algorithm 2).

For ``niters`` iterations: pick ``b`` coordinates uniformly at random without replacement
(from the passed generator), centre the sub-sampled rows on their mean, take the top right
singular vector ``v`` of the centred ``(n, b)`` matrix, score each row by its squared projection
``s_i = ⟨g_i^c, v⟩²``, and keep the ``n − ⌊c·f⌋`` lowest scores (ties → lowest index). The good
set is the intersection over iterations and the aggregate is the mean of its rows.

The projections come from the top eigenpair ``(λ, u)`` of the ``n × n`` Gram matrix of the
centred rows: ``X v = σ u`` so ``s_i = λ u_i²`` — no SVD of the ``(n, b)`` matrix is formed.
Defaults niters = 5, c = 1 (paper and FLPoison); b = 10000 is recalled, not checked — the
FLPoison port sub-samples a fraction 0.2 instead. If the intersection is empty the aggregate
is zero (``info["skipped"] = 1``). docs/conventions.md §C17.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from fedpoison.aggregators._common import check_f, check_updates, lowest, require
from fedpoison.aggregators._linalg import gram
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext


def removed(f: int, c: float) -> int:
    """Rows dropped per iteration, ``⌊c·f⌋``."""
    return math.floor(c * f + 1e-9)


def check_dnc(rule: str, n: int, f: int, c: float) -> None:
    """DnC's precondition: at least one row survives each iteration, ``n > ⌊c·f⌋``."""
    check_f(
        rule, n, f, c >= 0 and n > removed(f, c), f"c ≥ 0 and n > ⌊c·f⌋ = {removed(f, c)} (c={c})"
    )


def projection_scores(sub: torch.Tensor) -> torch.Tensor:
    """Squared projections ``(n,)`` of the centred rows on their top right singular vector
    (up to the positive factor ``scale²`` of :func:`gram`, which does not change the ranking)."""
    eigenvalues, eigenvectors = torch.linalg.eigh(gram(sub, centre=True)[0])
    return eigenvalues[-1].clamp_min(0.0) * eigenvectors[:, -1] ** 2


def dnc_mask(
    updates: torch.Tensor,
    f: int,
    generator: torch.Generator,
    niters: int = 5,
    b: int = 10000,
    c: float = 1.0,
) -> torch.Tensor:
    """Boolean mask ``(n,)`` of the rows that survive every iteration."""
    n, d = updates.shape
    check_dnc("dnc", n, f, c)
    if niters < 1 or b < 1:
        raise ValueError(
            f"dnc: needs niters ≥ 1 and b ≥ 1, got n={n}, f={f}, niters={niters}, b={b}"
        )
    keep = n - removed(f, c)
    good = torch.ones(n, dtype=torch.bool, device=updates.device)
    for _ in range(niters):
        coords = torch.randperm(d, generator=generator, device=generator.device)[:b]
        good &= lowest(projection_scores(updates[:, coords.to(updates.device)]), keep, 0.0)
    return good


def dnc(
    updates: torch.Tensor,
    f: int,
    generator: torch.Generator,
    niters: int = 5,
    b: int = 10000,
    c: float = 1.0,
) -> torch.Tensor:
    """Mean ``(d,)`` of the rows DnC keeps (zero if none survives)."""
    check_updates(updates, "dnc")
    good = dnc_mask(updates, f, generator, niters, b, c)
    return updates[good].mean(dim=0) if bool(good.any()) else torch.zeros_like(updates[0])


@AGGREGATORS.register("dnc")
class DnC(Aggregator):
    """DnC; needs ``ctx.generator``. Weights are ``1/|kept|`` on the kept clients, 0 on the rest.

    Args:
        niters: iterations (independent coordinate sub-samples).
        b: sub-sampled coordinates per iteration (all of them when ``b ≥ d``).
        c: filtering fraction; ``⌊c·f⌋`` rows are dropped per iteration.
    """

    paper: ClassVar[str] = "Shejwalkar & Houmansadr 2021"
    requirement: ClassVar[str] = "n > ⌊c·f⌋"
    translation_equivariant: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    rejects_far_rows: ClassVar[bool] = True
    aggregate_is_weighted_sum: ClassVar[bool] = True
    deterministic: ClassVar[bool] = False

    def __init__(self, niters: int = 5, b: int = 10000, c: float = 1.0) -> None:
        self.niters, self.b, self.c = niters, b, c

    def check(self, n: int, f: int) -> None:
        check_dnc(self.name, n, f, self.c)

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        check_updates(updates, self.name)
        g = require(ctx.generator, self.name, "ctx.generator (random coordinate sub-samples)")
        good = dnc_mask(updates, ctx.f, g, self.niters, self.b, self.c)
        k = int(good.sum())
        weights = good.to(updates.dtype) / max(k, 1)
        info = {"skipped": 1.0} if k == 0 else {}
        return AggregationResult(weights @ updates, weights, info)
