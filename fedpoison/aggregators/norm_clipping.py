"""Norm clipping ("norm difference clipping", Sun et al. 2019, "Can you really backdoor
federated learning?"): each update is scaled to L2 norm at most ``max_norm``,
``g_i · min(1, max_norm/‖g_i‖)``, then the clipped updates are averaged. docs/conventions.md §C16.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.aggregators._common import check_updates, uniform
from fedpoison.aggregators._linalg import clip_factors
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext


def norm_clipping(updates: torch.Tensor, max_norm: float) -> torch.Tensor:
    """Mean ``(d,)`` of the rows clipped to L2 norm ``max_norm``.

    Example:

        >>> import torch
        >>> from fedpoison.aggregators import norm_clipping
        >>> x = torch.tensor([[3.0, 4.0], [0.0, 1.0]])
        >>> [round(v, 4) for v in norm_clipping(x, max_norm=1.0).tolist()]  # (0.6, 0.8), (0, 1)
        [0.3, 0.9]
    """
    n = check_updates(updates, "norm_clipping")
    if max_norm <= 0:
        raise ValueError(f"norm_clipping: needs max_norm > 0, got n={n}, max_norm={max_norm}")
    return (clip_factors(updates, max_norm) / n) @ updates


@AGGREGATORS.register("norm_clipping")
class NormClipping(Aggregator):
    """Norm clipping then mean. No client is rejected: weights are uniform 1/n (weights of the
    clipped rows).

    Args:
        max_norm: the L2 bound M each update is clipped to.
    """

    paper: ClassVar[str] = "Sun et al. 2019"
    requirement: ClassVar[str] = "n ≥ 1"
    unanimous: ClassVar[bool] = False  # only rows within max_norm

    def __init__(self, max_norm: float = 1.0) -> None:
        self.max_norm = max_norm

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        return AggregationResult(
            norm_clipping(updates, self.max_norm), uniform(updates.shape[0], updates)
        )
