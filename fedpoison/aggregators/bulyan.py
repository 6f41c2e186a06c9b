"""Bulyan (El Mhamdi et al., ICML 2018; parameters as in Fang et al. 2020 App. A).

Requires ``n ≥ 4f+3``. With ``θ = n−2f`` and ``β = θ−2f``:

1. **Selection.** Start from R = all rows, S = ∅; while ``|S| < θ`` move Krum(R) from R to S,
   Krum recomputed on the current R with the same ``f`` (squared distances, ties → lowest
   index). Near the end ``|R| < 2f+3`` and Krum's own bound fails; as docs/conventions.md
   §C10 explains, we keep going with the neighbour count ``max(1, |R|−f−2)`` (FLPoison stops
   early instead), and the last remaining row is taken as is. With one neighbour, two
   colluding rows are each other's nearest neighbour and may be selected; stage 2 keeps them
   out of the aggregate.
2. **Aggregation.** Per coordinate, the mean of the ``β`` values of S closest to their median
   (even θ → mean of the two middle values). When two candidate values are equally close,
   the smaller one is kept, which makes the result independent of the row order.

The distances come from ONE Gram matrix; each selection step only masks removed rows.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.aggregators._common import check_f, check_updates, sort_rows
from fedpoison.aggregators._linalg import PairwiseSquaredDistances
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext
from fedpoison.aggregators.krum import lowest_scores
from fedpoison.aggregators.median import median_of_sorted


def check_bulyan(rule: str, n: int, f: int) -> None:
    """Bulyan's precondition ``n ≥ 4f+3``."""
    check_f(rule, n, f, n >= 4 * f + 3, f"n ≥ 4f+3 = {4 * f + 3}")


def bulyan_select(updates: torch.Tensor, f: int) -> torch.Tensor:
    """Boolean mask ``(n,)`` of the ``θ = n−2f`` rows chosen by repeated Krum."""
    n = check_updates(updates, "bulyan")
    check_bulyan("bulyan", n, f)
    pd = PairwiseSquaredDistances(updates)
    chosen = torch.zeros(n, dtype=torch.bool, device=updates.device)
    for _ in range(n - 2 * f):
        left = int((~chosen).sum())
        if left == 1:
            chosen |= ~chosen
            break
        # chosen rows neither compete nor count as neighbours: Krum on R alone
        chosen |= lowest_scores(pd, max(1, left - f - 2), 1, removed=chosen)
    return chosen


def closest_to_median_mean(s: torch.Tensor, beta: int) -> torch.Tensor:
    """Per column of the column-sorted ``s`` ``(θ, d)``: the mean of the ``β`` values closest to
    the column median (ties → the smaller values).

    The β values closest to the median are a window of consecutive sorted values. Window
    ``[w, w+β)`` is such a set iff no value outside it is strictly closer than the farthest
    value inside; the first (lowest) valid window is taken.
    """
    theta = s.shape[0]
    dist = (s - median_of_sorted(s)).abs()
    starts = theta - beta + 1
    inside = torch.maximum(dist[:starts], dist[beta - 1 :])  # farthest value in window w
    valid = torch.ones_like(inside, dtype=torch.bool)
    valid[1:] &= dist[: starts - 1] >= inside[1:]  # the value just before window w
    valid[:-1] &= dist[beta:] >= inside[:-1]  # the value just after window w
    first = torch.max(valid.to(torch.uint8), dim=0).indices  # first valid window
    index = first[None, :] + torch.arange(beta, device=s.device)[:, None]
    return s.gather(0, index).mean(dim=0)


def bulyan_with_selection(updates: torch.Tensor, f: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The aggregate ``(d,)`` and the mask of the θ selected rows ``(n,)``."""
    chosen = bulyan_select(updates, f)
    s = sort_rows(updates[chosen], owned=True)
    aggregate = closest_to_median_mean(s, int(chosen.sum()) - 2 * f).to(updates.device)
    return aggregate, chosen


def bulyan(updates: torch.Tensor, f: int) -> torch.Tensor:
    """Bulyan aggregate ``(d,)``: repeated-Krum selection of θ=n−2f rows, then per coordinate
    the mean of the β=θ−2f values closest to the median.

    Example: ``n = 7, f = 1`` (θ = 5, β = 3). The last selection step has one neighbour and
    picks 50 (mutual nearest neighbour of 60, lower index); the coordinate stage then keeps
    it out: the median of {0, 1, 2, 3, 50} is 2 and its 3 closest values are 1, 2, 3.

        >>> import torch
        >>> from fedpoison.aggregators import bulyan
        >>> x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [50.0], [60.0], [4.0]])
        >>> bulyan(x, f=1).tolist()
        [2.0]
    """
    return bulyan_with_selection(updates, f)[0]


@AGGREGATORS.register("bulyan")
class Bulyan(Aggregator):
    """Bulyan; weights are ``1/θ`` on the θ clients the Krum stage selected, 0 on the others
    (the coordinate-wise stage rejects no client as a whole)."""

    paper: ClassVar[str] = "El Mhamdi et al. 2018"
    requirement: ClassVar[str] = "n ≥ 4f+3"
    translation_equivariant: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    rejects_far_rows: ClassVar[bool] = True

    def check(self, n: int, f: int) -> None:
        check_bulyan(self.name, n, f)

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        aggregate, chosen = bulyan_with_selection(updates, ctx.f)
        return AggregationResult(aggregate, chosen.to(updates.dtype) / int(chosen.sum()))
