"""FLTrust (Cao et al., NDSS 2021, §IV, Alg. 1–2; official ``nd_aggregation.fltrust``).

With ``g_0`` the server's update on its root dataset:

- cosine ``c_i = ⟨g_i, g_0⟩ / (‖g_i‖·‖g_0‖)`` and trust ``TS_i = ReLU(c_i)``;
- each row rescaled to the server's norm, ``ḡ_i = (‖g_0‖/‖g_i‖)·g_i``;
- aggregate ``g = Σ_i TS_i ḡ_i / Σ_j TS_j``.

Rules work on model deltas, not parameters (docs/conventions.md §C2). Epsilons: the official
code adds 1e-9 to every norm and to Σ TS; here nothing is added — a zero row (or one whose
norm is below the dtype's smallest normal number, or a zero server update) has cosine 0 and
so trust 0, and when every trust score is 0 the aggregate is zero, i.e. the round is skipped
(``info={"skipped": 1.0}``), as the official code effectively does (FLPoison falls back to
uniform weights instead, a deviation). docs/conventions.md §C13.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.aggregators._common import check_updates, require
from fedpoison.aggregators._linalg import row_dots, row_norms
from fedpoison.aggregators.base import (
    AGGREGATORS,
    AggregationResult,
    Aggregator,
    RootSet,
    RoundContext,
)


def fltrust_parts(
    updates: torch.Tensor, server_update: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(share, unit, ‖g_0‖)`` in the work dtype: the trust shares ``TS_i/ΣTS`` and
    ``unit_i = share_i/‖g_i‖``, so that the aggregate is ``‖g_0‖ · (unit @ updates)`` — a
    convex combination of unit vectors times ``‖g_0‖``, which cannot overflow. Rows whose
    norm is below the dtype's smallest normal number count as zero rows (trust 0)."""
    n = check_updates(updates, "fltrust")
    g0 = server_update.to(updates).reshape(1, -1)
    if g0.shape[1] != updates.shape[1]:
        raise ValueError(
            f"fltrust: server_update has {g0.shape[1]} entries, "
            f"rows have {updates.shape[1]} (n={n})"
        )
    check_updates(g0, "fltrust (server_update)")
    norms, norm0 = row_norms(updates), float(row_norms(g0)[0])
    usable = norms >= torch.finfo(updates.dtype).tiny
    safe = torch.where(usable, norms, 1.0)
    cosine = row_dots(updates, g0[0]) / safe / (norm0 if norm0 > 0 else 1.0)
    trust = torch.where(usable, cosine.clamp(0.0, 1.0), 0.0)  # ReLU(cosine), ≤ 1 after rounding
    total = trust.sum()
    if total <= 0:
        return torch.zeros_like(trust), torch.zeros_like(trust), norm0
    share = trust / total
    return share, share / safe, norm0


def fltrust(updates: torch.Tensor, server_update: torch.Tensor) -> torch.Tensor:
    """Trust-weighted mean ``(d,)`` of the rows rescaled to ``‖server_update‖``
    (zero when every trust score is 0).

    Example: cosines with ``g_0 = (0, 1)`` are 0.8, 0 and 1, so the second row gets no trust;
    the others, rescaled to norm 1, are averaged with weights 0.8 and 1.

        >>> import torch
        >>> from fedpoison.aggregators import fltrust
        >>> x = torch.tensor([[3.0, 4.0], [-1.0, 0.0], [0.0, 10.0]])
        >>> g0 = torch.tensor([0.0, 1.0])
        >>> [round(v, 4) for v in fltrust(x, g0).tolist()]  # (0.8·(0.6, 0.8) + (0, 1))/1.8
        [0.2667, 0.9111]
    """
    _, unit, norm0 = fltrust_parts(updates, server_update)
    return norm0 * (unit.to(updates.dtype) @ updates)


@AGGREGATORS.register("fltrust")
class FLTrust(Aggregator):
    """FLTrust; needs ``ctx.server_update``. Weights are the trust shares ``TS_i/ΣTS``
    (0 = rejected: non-positive cosine with the server update)."""

    paper: ClassVar[str] = "Cao et al. 2021"
    requirement: ClassVar[str] = "n ≥ 1 (any f; needs the server's root-set update)"
    needs_server_update: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    unanimous: ClassVar[bool] = False  # rescales to ‖g_0‖

    def __init__(self, root: RootSet | None = None) -> None:
        self.root = RootSet() if root is None else root

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        g0 = require(ctx.server_update, self.name, "ctx.server_update (the root-set update g_0)")
        share, unit, norm0 = fltrust_parts(updates, g0)
        aggregate = norm0 * (unit.to(updates.dtype) @ updates)
        info = {"skipped": 1.0} if float(share.sum()) == 0.0 else {}
        return AggregationResult(aggregate, share.to(updates.dtype), info)
