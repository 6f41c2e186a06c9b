"""Inner-product manipulation (Xie et al. 2019, "Fall of Empires"; docs/conventions.md §C20)."""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.attacks.base import UPDATE_ATTACKS, AdversaryView, MaliciousReplies, UpdateAttack
from fedpoison.attacks.common import repeat_rows
from fedpoison.attacks.threat import Knowledge


def ipm_attack(benign: torch.Tensor, num_malicious: int, epsilon: float = 0.1) -> torch.Tensor:
    """``m`` copies of ``−ε · (1/|B|) Σ_{i∈B} Δ_i`` over the benign updates ``benign`` ``(|B|, d)``.

    Paper: Byzantine workers send ``−ε·mean(g_benign)``. The map is linear, so with deltas
    (``Δ ≈ −lr·g``) the same formula on deltas gives the same attack. Statistics source:
    benign updates only (omniscient, docs/conventions.md §C4).

    Example:

        >>> import torch
        >>> from fedpoison.attacks import ipm_attack
        >>> benign = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
        >>> ipm_attack(benign, 2, epsilon=0.5).tolist()  # −0.5 · (2, 3)
        [[-1.0, -1.5], [-1.0, -1.5]]
    """
    if benign.shape[0] == 0:
        raise ValueError("ipm: needs at least one benign update")
    return repeat_rows(benign.mean(dim=0) * (-epsilon), num_malicious)


@UPDATE_ATTACKS.register("ipm")
class IPM(UpdateAttack):
    """IPM: every attacker sends ``−ε`` times the benign mean (default ``ε = 0.1``,
    docs/conventions.md §C20)."""

    paper: ClassVar[str] = "Xie et al. 2019, Fall of Empires (UAI)"
    knowledge: ClassVar[Knowledge] = "all"
    needs_defense: ClassVar[bool] = False

    def __init__(self, epsilon: float = 0.1) -> None:
        self.epsilon = float(epsilon)

    def reads_own_updates(self) -> bool:
        """The benign mean only."""
        return False

    def craft(self, view: AdversaryView) -> MaliciousReplies:
        if view.benign is None:
            raise ValueError("ipm needs the benign updates; set threat.knowledge=all")
        return MaliciousReplies(ipm_attack(view.benign, view.num_malicious, self.epsilon))
