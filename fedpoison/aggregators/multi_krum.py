"""Multi-Krum (Blanchard et al., NeurIPS 2017, §4): the MEAN of the ``m`` rows with the
lowest Krum scores, all scores computed once on the full set (n−f−2 nearest, squared
distances, ties → lowest index). ``m = None`` → ``n − f``; ``m = 1`` is Krum and ``m = n`` the
mean. Requires ``n ≥ 2f+3``. docs/conventions.md §C7 (Karimireddy's code returns the SUM
instead, and Shejwalkar's iterates Krum with removal; neither is this rule). ByzFL's
``MultiKrum(f)`` averages the ``n − f`` rows of lowest score over ``n−f−1`` neighbours:
``multi_krum(x, f − 1, m=n − f)`` here (docs/aggregators.md).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext
from fedpoison.aggregators.krum import check_krum, krum_select


def multi_krum_mask(updates: torch.Tensor, f: int, m: int | None = None) -> torch.Tensor:
    """Boolean mask ``(n,)`` of the selected rows."""
    n = updates.shape[0]
    return krum_select(updates, f, n - f if m is None else m, "multi_krum")


def multi_krum_weights(updates: torch.Tensor, f: int, m: int | None = None) -> torch.Tensor:
    """Weights ``(n,)``: ``1/m`` on the selected rows, 0 on the others."""
    mask = multi_krum_mask(updates, f, m)
    return mask.to(updates.dtype) / int(mask.sum())


def multi_krum(updates: torch.Tensor, f: int, m: int | None = None) -> torch.Tensor:
    """Mean ``(d,)`` of the ``m`` lowest-score rows (``m=None`` → ``n−f``), as one
    matrix-vector product (no copy of the selected rows).

    Example: the four inliers score 2, the outlier 343 (see :func:`~fedpoison.aggregators.krum`).

        >>> import torch
        >>> from fedpoison.aggregators import multi_krum
        >>> g = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [10.0, 10.0]])
        >>> multi_krum(g, f=1).tolist()  # m = n − f = 4: the mean of the inliers
        [0.5, 0.5]
        >>> multi_krum(g, f=1, m=2).tolist()  # ties → lowest index: rows 0 and 1
        [0.5, 0.0]
    """
    return multi_krum_weights(updates, f, m) @ updates


@AGGREGATORS.register("multi_krum")
class MultiKrum(Aggregator):
    """Multi-Krum; weights are ``1/m`` on the selected clients, 0 on the rejected.

    Args:
        m: rows averaged; ``None`` = ``n − f`` (the usual experimental choice).
    """

    paper: ClassVar[str] = "Blanchard et al. 2017"
    requirement: ClassVar[str] = "n ≥ 2f+3, 1 ≤ m ≤ n"
    translation_equivariant: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    rejects_far_rows: ClassVar[bool] = True
    aggregate_is_weighted_sum: ClassVar[bool] = True

    def __init__(self, m: int | None = None) -> None:
        self.m = m

    def check(self, n: int, f: int) -> None:
        check_krum(self.name, n, f)
        if self.m is not None and not 1 <= self.m <= n:
            raise ValueError(f"{self.name}: needs 1 ≤ m ≤ n, got n={n}, f={f}, m={self.m}")

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        weights = multi_krum_weights(updates, ctx.f, self.m)
        return AggregationResult(weights @ updates, weights)
