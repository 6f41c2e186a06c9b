"""Coordinate-wise median (Yin et al., ICML 2018, Option I).

``Med(g)_k = median{g_{1,k}, …, g_{n,k}}``; for even ``n`` the mean of the two middle values
(Fang et al. 2020 §2.2 and ``numpy.median``), NOT ``torch.median``'s lower median.
docs/conventions.md §C8. One sort along dim 0 (:func:`sort_rows`).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.aggregators._common import check_f, check_updates, sort_rows, uniform
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext


def median_of_sorted(s: torch.Tensor) -> torch.Tensor:
    """Median ``(d,)`` of column-sorted ``s``; even rows → mean of the two middle values,
    computed as ``a/2 + b/2`` so that values near the dtype's maximum do not overflow."""
    n = s.shape[0]
    if n % 2 == 1:
        return s[n // 2].clone()
    return 0.5 * s[n // 2 - 1] + 0.5 * s[n // 2]


def median(updates: torch.Tensor) -> torch.Tensor:
    """Coordinate-wise median ``(d,)`` (even n → mean of the two middle values).

    Example:

        >>> import torch
        >>> from fedpoison.aggregators import median
        >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 100.0], [7.0, 8.0]])
        >>> median(x).tolist()  # (3 + 5)/2 and (4 + 8)/2; torch.median would give 3 and 4
        [4.0, 6.0]
    """
    check_updates(updates, "median")
    return median_of_sorted(sort_rows(updates)).to(updates.device)


@AGGREGATORS.register("median")
class Median(Aggregator):
    """Coordinate-wise median. No client is rejected as a whole, so weights are uniform 1/n."""

    paper: ClassVar[str] = "Yin et al. 2018"
    requirement: ClassVar[str] = "n ≥ 2f+1"
    translation_equivariant: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    bounded_by_honest: ClassVar[bool] = True

    def check(self, n: int, f: int) -> None:
        check_f(self.name, n, f, n >= 2 * f + 1, f"n ≥ 2f+1 = {2 * f + 1}")

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        return AggregationResult(median(updates), uniform(updates.shape[0], updates))
