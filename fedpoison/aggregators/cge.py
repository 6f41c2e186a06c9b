"""CGE — comparative gradient elimination (Gupta, Liu & Vaidya 2021, arXiv:2008.04699; also
Liu, Gupta & Vaidya, PODC 2021; REFERENCES D22).

Sort the rows by norm, ``‖g_(1)‖ ≤ … ≤ ‖g_(n)‖`` (ties → lower row index), drop the ``f``
largest and combine the ``n−f`` kept rows:

- ``reduce="sum"`` (default, the paper's filter as REFERENCES records it [R]):
  ``Σ_{j≤n−f} g_(j)``, with the server step ``w ← w + η·(that sum)``;
- ``reduce="mean"``: ``(1/(n−f)) Σ_{j≤n−f} g_(j)``, what every peer computes
  (LPD-EPFL/ByzantineMomentum ``cge.py``, byzpy, a FedScale port). ByzFL has no CGE.

The two differ only by the factor ``n−f`` in the step (REFERENCES Conventions 8): a learning-rate
change, not a robustness change; use ``mean`` for comparisons with the peers. Requires
``0 ≤ f < n``. Norms are finite for every finite row (:func:`row_norms`, float64).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch

from fedpoison.aggregators._common import check_f, check_updates
from fedpoison.aggregators._linalg import row_norms
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext

Reduce = Literal["sum", "mean"]
REDUCTIONS: tuple[Reduce, ...] = ("sum", "mean")


def check_cge(rule: str, n: int, f: int) -> None:
    """CGE's precondition ``0 ≤ f < n``."""
    check_f(rule, n, f, f < n, f"n ≥ f+1 = {f + 1}")


def cge_weights(updates: torch.Tensor, f: int, reduce: Reduce = "sum") -> torch.Tensor:
    """Weights ``(n,)``: 1 (``sum``) or ``1/(n−f)`` (``mean``) on the ``n−f`` smallest-norm
    rows, 0 on the ``f`` largest."""
    if reduce not in REDUCTIONS:
        raise ValueError(f"cge: reduce must be one of {REDUCTIONS}, got {reduce!r}")
    n = check_updates(updates, "cge")
    check_cge("cge", n, f)
    kept = torch.sort(row_norms(updates), stable=True).indices[: n - f]
    weights = torch.zeros(n, dtype=updates.dtype, device=updates.device)
    weights[kept] = 1.0 if reduce == "sum" else 1.0 / (n - f)
    return weights


def cge(updates: torch.Tensor, f: int, reduce: Reduce = "sum") -> torch.Tensor:
    """Sum (default) or mean ``(d,)`` of the ``n−f`` rows of smallest norm.

    Example: (6, 8) has the largest norm and is dropped.

        >>> import torch
        >>> from fedpoison.aggregators import cge
        >>> g = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [6.0, 8.0]])
        >>> cge(g, f=1).tolist()
        [4.0, 6.0]
        >>> [round(v, 4) for v in cge(g, f=1, reduce="mean").tolist()]
        [1.3333, 2.0]
    """
    return cge_weights(updates, f, reduce) @ updates


@AGGREGATORS.register("cge")
class CGE(Aggregator):
    """CGE; weights are 1 (sum) or ``1/(n−f)`` (mean) on the kept rows, 0 on the dropped.

    Args:
        reduce: ``sum`` (paper) or ``mean`` (peers).
    """

    paper: ClassVar[str] = "Gupta et al. 2021"
    requirement: ClassVar[str] = "n ≥ f+1 (theory: f/n below about 1/3)"
    scale_equivariant: ClassVar[bool] = True
    unanimous: ClassVar[bool] = False  # the sum of n−f equal rows is n−f times the row
    aggregate_is_weighted_sum: ClassVar[bool] = True

    def __init__(self, reduce: Reduce = "sum") -> None:
        if reduce not in REDUCTIONS:
            raise ValueError(f"{self.name}: reduce must be one of {REDUCTIONS}, got {reduce!r}")
        self.reduce: Reduce = reduce

    def check(self, n: int, f: int) -> None:
        check_cge(self.name, n, f)

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        weights = cge_weights(updates, ctx.f, self.reduce)
        return AggregationResult(weights @ updates, weights)
