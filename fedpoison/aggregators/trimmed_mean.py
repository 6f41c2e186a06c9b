"""Coordinate-wise trimmed mean (Yin et al., ICML 2018, Option II).

Per coordinate drop the ``b`` largest and ``b`` smallest values and average the remaining
``n − 2b``: ``TM(g)_k = (1/(n−2b)) Σ_{x∈U_k} x``. ``b`` is a count per side (default ``b = f``,
as Fang, FLTrust and Karimireddy use); a fraction ``beta`` gives ``b = ⌊beta·n⌋`` (Flower's
``FedTrimmedAvg`` uses 0.2, FLPoison 0.1). Requires ``n > 2b``. docs/conventions.md §C9.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from fedpoison.aggregators._common import check_f, check_updates, sort_rows, uniform
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext


def check_trim(rule: str, n: int, f: int, b: int) -> None:
    """Trimmed mean's precondition ``0 ≤ b`` and ``n ≥ 2b+1``."""
    check_f(rule, n, f, 0 <= b and n >= 2 * b + 1, f"0 ≤ b and n ≥ 2b+1 = {2 * b + 1} (b={b})")


def trimmed_mean(updates: torch.Tensor, b: int) -> torch.Tensor:
    """Coordinate-wise mean ``(d,)`` after dropping the ``b`` largest and ``b`` smallest
    values.

    Example:

        >>> import torch
        >>> from fedpoison.aggregators import trimmed_mean
        >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [100.0]])
        >>> trimmed_mean(x, b=1).tolist()  # mean of 1, 2, 3
        [2.0]
        >>> [round(v, 4) for v in trimmed_mean(x, b=0).tolist()]  # the plain mean
        [21.2]
    """
    n = check_updates(updates, "trimmed_mean")
    check_trim("trimmed_mean", n, b, b)
    return sort_rows(updates)[b : n - b].mean(dim=0).to(updates.device)


@AGGREGATORS.register("trimmed_mean")
class TrimmedMean(Aggregator):
    """Trimmed mean. No client is rejected as a whole, so weights are uniform 1/n.

    Args:
        b: values dropped per side; ``None`` = the round's ``f``.
        beta: alternatively a fraction per side, ``b = ⌊beta·n⌋`` (give ``b`` or ``beta``).
    """

    paper: ClassVar[str] = "Yin et al. 2018"
    requirement: ClassVar[str] = "n ≥ 2b+1 (b = f by default)"
    translation_equivariant: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    bounded_by_honest: ClassVar[bool] = True

    def __init__(self, b: int | None = None, beta: float | None = None) -> None:
        if b is not None and beta is not None:
            raise ValueError(f"{self.name}: give b or beta, not both (b={b}, beta={beta})")
        self.b = b
        self.beta = beta

    def trim(self, n: int, f: int) -> int:
        """The ``b`` used for ``n`` rows and assumed ``f``."""
        if self.beta is not None:
            return math.floor(self.beta * n + 1e-9)  # guard 0.29·100 = 28.999…
        return f if self.b is None else self.b

    def check(self, n: int, f: int) -> None:
        check_trim(self.name, n, f, self.trim(n, f))

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        b = self.trim(updates.shape[0], ctx.f)
        return AggregationResult(trimmed_mean(updates, b), uniform(updates.shape[0], updates))
