"""FedAvg (McMahan et al., AISTATS 2017): the (weighted) average of the updates.

``mean(updates, weights)`` = Σ_i w_i g_i / Σ_i w_i; ``weights=None`` = uniform 1/n.
The :class:`FedAvg` rule weights by the client-reported example counts
(``ctx.num_examples``), which a malicious client controls; every robust rule ignores them.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.aggregators._common import check_shape, checked, uniform
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext


def normalised_weights(
    weights: torch.Tensor | None, n: int, like: torch.Tensor, rule: str
) -> torch.Tensor:
    """``weights / Σ weights`` as ``(n,)`` in ``like``'s dtype and device; ``None`` = uniform.

    Raises ``ValueError`` for a wrong shape, negative or non-finite entries, or a zero sum.
    """
    if weights is None:
        return uniform(n, like)
    w = torch.as_tensor(weights).to(device=like.device, dtype=torch.float64).flatten()
    if (
        w.shape[0] != n
        or not bool(torch.isfinite(w).all())
        or bool((w < 0).any())
        or float(w.sum()) <= 0
    ):
        raise ValueError(
            f"{rule}: weights must be {n} finite non-negative numbers with a positive sum, "
            f"got {w.tolist()}"
        )
    return (w / w.sum()).to(like.dtype)


def mean(updates: torch.Tensor, weights: torch.Tensor | None = None) -> torch.Tensor:
    """(Weighted) average of the rows ``(d,)``; weights are normalised to sum to one.

    Example:

        >>> import torch
        >>> from fedpoison.aggregators import mean
        >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 100.0], [7.0, 8.0]])
        >>> mean(x).tolist()
        [4.0, 28.5]
        >>> mean(x, weights=torch.tensor([1.0, 1.0, 0.0, 2.0])).tolist()
        [4.5, 5.5]
    """
    n = check_shape(updates, "mean")
    if weights is None:
        average = updates.mean(dim=0)
    else:
        average = normalised_weights(weights, n, updates, "mean") @ updates
    return checked(average, updates, "mean")


@AGGREGATORS.register("fedavg")
class FedAvg(Aggregator):
    """FedAvg. Weights are the normalised averaging weights (no client is rejected).

    Args:
        weighted: weight clients by their reported example counts (FedAvg as published);
            ``False`` = plain mean. Without counts in the context the mean is uniform.
    """

    paper: ClassVar[str] = "McMahan et al. 2017"
    requirement: ClassVar[str] = "n ≥ 1 (not robust: f is ignored)"
    translation_equivariant: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    bounded_influence: ClassVar[bool] = False
    aggregate_is_weighted_sum: ClassVar[bool] = True
    uses_num_examples: ClassVar[bool] = True

    def __init__(self, weighted: bool = True) -> None:
        self.weighted = weighted

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        n = check_shape(updates, self.name)
        counts = ctx.num_examples if self.weighted else None
        weights = normalised_weights(counts, n, updates, self.name)
        return AggregationResult(checked(weights @ updates, updates, self.name), weights)
