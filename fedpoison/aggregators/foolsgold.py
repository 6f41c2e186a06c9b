"""FoolsGold (Fung, Yoon & Beschastnikh, RAID 2020, Alg. 1; official ``foolsgold.py``).

Sybils that push the same poisoned objective send similar updates over time. With ``H_i`` the
cumulative sum of client i's updates (history kept per client id across rounds):

1. ``cs_ij = cos(H_i, H_j)`` for i ≠ j, ``cs_ii = 0`` (−1 for an all-zero history, as the
   official ``cosine_similarity − I``), and ``v_i = max_j cs_ij``;
2. pardoning: ``cs_ij ← cs_ij · v_i / v_j`` where ``v_i < v_j``;
3. ``α_i = clip(1 − max_j cs_ij, 0, 1)``, rescaled by ``max α`` and 1 replaced by 0.99;
4. logit re-weighting with confidence κ: ``α_i ← κ·(ln(α_i/(1−α_i)) + 0.5)``, clipped to [0, 1]
   (``α = 0`` → −∞ → 0).

The aggregate is ``(1/n) Σ_i α_i g_i`` as in the official PyTorch code (``deep-fg``): with every
α = 1 it is the mean. (The official logistic-regression code returns ``Σ α_i g_i``; many ports
return ``Σ α_i g_i / Σ α_i``.) If every α is 0 (e.g. all histories identical) the aggregate is
zero (the official code divides by zero there). ``1 − max cos`` below 1e-12 is taken as 0, so
that rounding cannot make identical sybils look independent. The official option to restrict
the similarity to "important features" is not offered. docs/conventions.md §C18.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from fedpoison.aggregators._common import check_updates
from fedpoison.aggregators._linalg import cosine_matrix
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext

ROUNDING = 1e-12
"""``1 − cos`` below this is rounding error: the two histories point the same way."""


def foolsgold_weights(history: torch.Tensor, kappa: float = 1.0) -> torch.Tensor:
    """FoolsGold's per-client learning rates ``α`` ``(n,)`` from the cumulative histories
    ``(n, d)``."""
    check_updates(history, "foolsgold")
    cs = cosine_matrix(history)
    zero = cs.diagonal() <= 0  # a zero history has cosine 0 with itself
    cs.diagonal().copy_(-zero.to(cs.dtype))  # cos − I: 0 on the diagonal, −1 for zero rows
    v = cs.max(dim=1).values
    pardon = (v[:, None] < v[None, :]) & (v[None, :] > 0)
    ratio = v[:, None] / torch.where(v[None, :] > 0, v[None, :], 1.0)
    cs = torch.where(pardon, cs * ratio, cs)
    alpha = (1.0 - cs.max(dim=1).values).clamp(0.0, 1.0)
    alpha = torch.where(alpha < ROUNDING, 0.0, alpha)  # exact sybils: cosine 1 up to rounding
    top = alpha.max()
    if top <= 0:
        return torch.zeros_like(alpha).to(history.dtype)
    alpha = alpha / top
    alpha = torch.where(alpha == 1.0, 0.99, alpha)
    alpha = kappa * (torch.log(alpha / (1.0 - alpha)) + 0.5)
    return alpha.clamp(0.0, 1.0).to(history.dtype)


def foolsgold(updates: torch.Tensor, history: torch.Tensor, kappa: float = 1.0) -> torch.Tensor:
    """``(1/n) Σ α_i g_i`` ``(d,)`` with α from the rows' cumulative ``history`` ``(n, d)``
    (this round's updates included)."""
    n = check_updates(updates, "foolsgold")
    if history.shape != updates.shape:
        raise ValueError(
            f"foolsgold: history has shape {tuple(history.shape)}, "
            f"updates {tuple(updates.shape)} (n={n})"
        )
    return (foolsgold_weights(history, kappa) / n).to(updates.device) @ updates


@AGGREGATORS.register("foolsgold")
class FoolsGold(Aggregator):
    """FoolsGold with the per-client history as state, keyed by ``ctx.client_ids``.

    Weights are the coefficients ``α_i/n`` (the aggregate is ``weights @ updates``; 0 =
    rejected). The similarity is computed over the histories of every client seen so far
    (Alg. 1 compares all clients), so a sybil absent this round still exposes its peers;
    ``compare_absent=False`` compares this round's participants only.

    Args:
        kappa: confidence parameter κ of the logit.
        compare_absent: include clients absent this round in the similarity.
    """

    paper: ClassVar[str] = "Fung et al. 2020"
    requirement: ClassVar[str] = "n ≥ 1 (no bound on f; needs client ids)"
    needs_client_rows: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    unanimous: ClassVar[bool] = False  # identical histories look like sybils
    bounded_influence: ClassVar[bool] = False
    aggregate_is_weighted_sum: ClassVar[bool] = True

    def __init__(self, kappa: float = 1.0, compare_absent: bool = True) -> None:
        self.kappa, self.compare_absent = kappa, compare_absent
        self.ids: list[int] = []
        self.history: torch.Tensor | None = None

    def _record(
        self, updates: torch.Tensor, client_ids: tuple[int, ...]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Add this round's rows to the histories; return all histories and the rows' indices."""
        n, d = updates.shape
        if len(client_ids) != n or len(set(client_ids)) != n:
            raise ValueError(
                f"{self.name}: needs {n} distinct client ids, got n={n}, ids={client_ids}"
            )
        if self.history is None or self.history.shape[1] != d:
            self.ids, self.history = [], updates.new_zeros((0, d))
        index = {c: i for i, c in enumerate(self.ids)}
        for c in client_ids:
            index.setdefault(c, len(index))
        self.ids = list(index)
        grow = len(self.ids) - self.history.shape[0]
        history = self.history.to(updates)
        if grow:
            history = torch.cat([history, updates.new_zeros((grow, d))])
        rows = torch.tensor([index[c] for c in client_ids], device=updates.device)
        self.history = history.index_add_(0, rows, updates)
        return self.history, rows

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        check_updates(updates, self.name)  # before the state is touched
        history, rows = self._record(updates, ctx.client_ids)
        if self.compare_absent:
            alpha = foolsgold_weights(history, self.kappa)[rows]
        else:
            alpha = foolsgold_weights(history[rows], self.kappa)
        weights = alpha / updates.shape[0]
        info = {"skipped": 1.0} if float(alpha.sum()) == 0.0 else {}
        return AggregationResult(weights @ updates, weights, info)

    def state_dict(self) -> dict[str, Any]:
        history = None if self.history is None else self.history.clone()
        return {"ids": list(self.ids), "history": history}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        history = state.get("history")
        self.ids = list(state.get("ids", []))
        self.history = None if history is None else history.clone()
