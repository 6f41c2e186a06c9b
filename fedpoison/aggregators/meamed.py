"""Meamed — mean around the median (Xie, Koyejo & Gupta 2018, "Generalized Byzantine-tolerant
SGD", arXiv:1802.10116; REFERENCES D17).

Per coordinate ``k``: ``m_k`` = the median (even ``n`` → the mean of the two middle values, as
ByzFL's ``quantile(0.5)`` and :func:`~fedpoison.aggregators.median`), ``U_k`` = the ``n−f``
values with the smallest ``|g_{i,k} − m_k|``, and ``Meamed_k = (1/(n−f)) Σ_{x∈U_k} x``.
Requires ``n ≥ 2f+1`` (ByzFL; byzpy only asks ``f < n``). Not trimmed mean: it keeps the
``n−f`` values nearest the median instead of dropping ``f`` per side.

Ties at the boundary of ``U_k`` (values equally far from the median on both sides) change the
result; peers break them arbitrarily (argpartition, topk). Here: a stable sort on
``|x − m_k|``, then by row index (this reproduces ByzFL's docstring golden).

Vectorised: one column sort (:func:`sort_rows`) gives the median, and in sorted order the
deviations fall then rise, so ``U_k`` is a window of ``n−f`` consecutive sorted values: of
the ``f+1`` windows, the one whose largest deviation (at one of its ends) is at most the
smallest outside it (at one of its two neighbours). Only the ``2(f+1)`` edge rows are
compared, and the kept values are summed directly (no cancellation). Only columns where a
value outside ties with the farthest inside are resolved by row index (a stable sort of those
columns). Deviations and sums are in float64.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.aggregators._common import check_f, check_updates, sort_rows, uniform
from fedpoison.aggregators._linalg import work_dtype
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext
from fedpoison.aggregators.median import median_of_sorted


def check_meamed(rule: str, n: int, f: int) -> None:
    """Meamed's precondition ``n ≥ 2f+1``."""
    check_f(rule, n, f, n >= 2 * f + 1, f"n ≥ 2f+1 = {2 * f + 1}")


def _by_row_index(x: torch.Tensor, m: torch.Tensor, k: int) -> torch.Tensor:
    """Sum ``(c,)`` of the ``k`` values of each column of ``x`` nearest ``m`` (a stable sort on
    ``|x − m|``: ties → the lower row index)."""
    order = torch.sort((x - m).abs(), dim=0, stable=True).indices[:k]
    return x.gather(0, order).sum(dim=0)


def meamed(updates: torch.Tensor, f: int) -> torch.Tensor:
    """Coordinate-wise mean ``(d,)`` of the ``n−f`` values nearest the median.

    Example: median 2, so 100 is left out.

        >>> import torch
        >>> from fedpoison.aggregators import meamed
        >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [100.0]])
        >>> meamed(x, f=1).tolist()  # mean of 0, 1, 2, 3 (trimmed mean b=1 would give 2.0)
        [1.5]
    """
    n = check_updates(updates, "meamed")
    check_meamed("meamed", n, f)
    k, work = n - f, work_dtype(updates)
    s = sort_rows(updates).to(updates.device)
    m = median_of_sorted(s[(n - 1) // 2 : n // 2 + 1].to(work))
    # window j = sorted rows j … j+k−1: its largest deviation is at one of its ends, the
    # smallest outside it at one of its two neighbours (±∞ past the ends)
    low, high = (s[: f + 1].to(work) - m).abs(), (s[k - 1 :].to(work) - m).abs()
    inside = torch.maximum(low, high)
    edge = torch.full_like(low[:1], float("inf"))
    outside = torch.minimum(torch.cat([edge, low[:f]]), torch.cat([high[1:], edge]))
    j = (inside <= outside).to(torch.uint8).argmax(dim=0)  # the window of the k smallest
    rows = torch.arange(f, device=s.device)[:, None]
    total = s[f:k].sum(dim=0, dtype=work)  # rows every window holds
    total += torch.where(rows >= j, s[:f], 0.0).sum(dim=0, dtype=work)
    total += torch.where(rows < j, s[k:], 0.0).sum(dim=0, dtype=work)
    # a value outside as far from the median as the farthest inside: the row index decides
    ambiguous = (inside.gather(0, j[None]) == outside.gather(0, j[None]))[0].nonzero().flatten()
    if len(ambiguous):
        total[ambiguous] = _by_row_index(updates[:, ambiguous].to(work), m[ambiguous], k)
    return (total / k).to(updates.dtype)


@AGGREGATORS.register("meamed")
class Meamed(Aggregator):
    """Meamed. No client is rejected as a whole, so weights are uniform 1/n."""

    paper: ClassVar[str] = "Xie et al. 2018 (arXiv:1802.10116)"
    requirement: ClassVar[str] = "n ≥ 2f+1"
    translation_equivariant: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True

    def check(self, n: int, f: int) -> None:
        check_meamed(self.name, n, f)

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        return AggregationResult(meamed(updates, ctx.f), uniform(updates.shape[0], updates))
