"""MoNNA — mean of the ``n−f`` nearest neighbours of a trusted pivot (Farhadkhani et al.,
ICML 2023, "Robust Collaborative Learning with Linear Gradient Overhead"; ByzFL's
definition; REFERENCES D18).

``N_p`` = the ``n−f`` rows with the smallest ``‖g_i − p‖`` and ``MoNNA = (1/(n−f)) Σ_{i∈N_p} g_i``.
Requires ``n ≥ 2f+1``. The pivot ``p`` is explicit, never a silent row 0 (REFERENCES
Conventions 6, docs/conventions.md §C1): either a row index, which is then always among the
selected rows (distance 0, as in ByzFL and byzpy), or an external trusted vector ``(d,)``,
e.g. the server's own update. Distances are Euclidean (byzpy's squared distances give the same
order), computed in one pass over the rows (``O(nd)``, no Gram matrix); ties → lower row index
(ByzFL's argpartition is arbitrary).

The paper runs MoNNA peer to peer: each honest node pivots on its own vector, which is trusted
by construction. ByzFL's ``idx = 0`` default is an honest row only because ByzFL stacks the
honest rows first; fedpoison orders rows by client id with a seeded malicious pool, so row 0
may be an attacker. The configurable rule :class:`MoNNA` therefore pivots on the server's own
root-set update (``defense.root``, the FLTrust setting) or, with ``pivot_client``, on the row
of one client the server trusts.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.aggregators._common import check_f, check_updates, require
from fedpoison.aggregators._linalg import row_norms
from fedpoison.aggregators.base import (
    AGGREGATORS,
    AggregationResult,
    Aggregator,
    RootSet,
    RoundContext,
)


def check_monna(rule: str, n: int, f: int) -> None:
    """MoNNA's precondition ``n ≥ 2f+1``."""
    check_f(rule, n, f, n >= 2 * f + 1, f"n ≥ 2f+1 = {2 * f + 1}")


def monna_weights(updates: torch.Tensor, f: int, pivot: int | torch.Tensor) -> torch.Tensor:
    """Weights ``(n,)``: ``1/(n−f)`` on the ``n−f`` rows nearest the pivot, 0 elsewhere."""
    n = check_updates(updates, "monna")
    check_monna("monna", n, f)
    if isinstance(pivot, torch.Tensor):
        if pivot.shape != updates[0].shape or not bool(torch.isfinite(pivot).all()):
            raise ValueError(
                f"monna: the pivot must be a finite vector of shape {tuple(updates[0].shape)}, "
                f"got shape {tuple(pivot.shape)}"
            )
        dist = row_norms(updates - pivot.to(updates))
    else:
        if isinstance(pivot, bool) or not 0 <= pivot < n:
            raise ValueError(f"monna: the pivot row must be in [0, n), got pivot={pivot}, n={n}")
        dist = row_norms(updates - updates[pivot])
        dist[pivot] = -1.0  # the pivot row is always its own nearest neighbour
    nearest = torch.sort(dist, stable=True).indices[: n - f]
    weights = torch.zeros(n, dtype=updates.dtype, device=updates.device)
    weights[nearest] = 1.0 / (n - f)
    return weights


def monna(updates: torch.Tensor, f: int, pivot: int | torch.Tensor) -> torch.Tensor:
    """Mean ``(d,)`` of the ``n−f`` rows nearest ``pivot`` (a row index or a ``(d,)`` vector;
    no default: it must be a row or vector the caller trusts).

    Example: around row 0 the three inliers are averaged; around the outlier (row 3) the
    outlier is always kept (REFERENCES D18: no robustness without a trusted pivot).

        >>> import torch
        >>> from fedpoison.aggregators import monna
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [10.0, 10.0]])
        >>> [round(v, 4) for v in monna(x, f=1, pivot=0).tolist()]
        [0.3333, 0.3333]
        >>> [round(v, 4) for v in monna(x, f=1, pivot=3).tolist()]
        [3.6667, 3.6667]
    """
    return monna_weights(updates, f, pivot) @ updates


@AGGREGATORS.register("monna")
class MoNNA(Aggregator):
    """MoNNA around a trusted pivot; weights ``1/(n−f)`` on the selected rows, 0 elsewhere.

    Args:
        pivot_client: partition id of a client the server trusts (e.g. one it runs itself):
            its row is the pivot, and a round it does not take part in is refused (skipped)
            with an error naming it. ``None`` (default): the pivot is the server's own update
            on its root set, trained each round as for FLTrust.
        root: the server's root set and training step; unused (no root set is trained)
            when ``pivot_client`` is set.
    """

    paper: ClassVar[str] = "Farhadkhani et al. 2023"
    requirement: ClassVar[str] = "n ≥ 2f+1 (a trusted pivot: the server's update or a client)"
    needs_server_update: ClassVar[bool] = True
    translation_equivariant: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    rejects_far_rows: ClassVar[bool] = True
    aggregate_is_weighted_sum: ClassVar[bool] = True

    def __init__(self, pivot_client: int | None = None, root: RootSet | None = None) -> None:
        self.pivot_client = pivot_client
        self.root = None if pivot_client is not None else RootSet() if root is None else root

    def check(self, n: int, f: int) -> None:
        check_monna(self.name, n, f)

    def pivot(self, ctx: RoundContext) -> int | torch.Tensor:
        """The round's pivot: the trusted client's row index, or the server's update."""
        if self.pivot_client is None:
            return require(
                ctx.server_update,
                self.name,
                "ctx.server_update (the server's root-set update, its pivot); "
                "or set defense.pivot_client to a trusted client id",
            )
        if self.pivot_client not in ctx.client_ids:
            raise ValueError(
                f"{self.name}: the trusted pivot client {self.pivot_client} is not among this "
                f"round's {len(ctx.client_ids)} rows; sample it every round "
                "(federation.clients_per_round = num_clients) or pivot on the server's update"
            )
        return ctx.client_ids.index(self.pivot_client)

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        weights = monna_weights(updates, ctx.f, self.pivot(ctx))
        return AggregationResult(weights @ updates, weights)
