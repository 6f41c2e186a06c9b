"""Model replacement / scaling (Bagdasaryan et al. 2020, §3.2; docs/conventions.md §C26)."""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.attacks.base import UPDATE_ATTACKS, AdversaryView, MaliciousReplies, UpdateAttack
from fedpoison.attacks.threat import Knowledge


def scaling_attack(own: torch.Tensor, gamma: float) -> torch.Tensor:
    """``γ · Δ_i`` for every malicious client's honest (typically backdoor-trained) update.

    Paper: the attacker submits ``L = γ(X − G^t) + G^t``; in delta form ``Δ_att = γ·(X − G^t)``,
    which is exactly a rescaling of the delta, so no sign translation is needed.

    Example: 10 participants, server lr 0.5, so γ = n/η = 20.

        >>> import torch
        >>> from fedpoison.attacks import replacement_gamma, scaling_attack
        >>> gamma = replacement_gamma(10, 0.5)
        >>> gamma
        20.0
        >>> scaling_attack(torch.tensor([[0.5, -1.0]]), gamma).tolist()
        [[10.0, -20.0]]
    """
    return own * gamma


def replacement_gamma(num_participants: int, server_lr: float) -> float:
    """Bagdasaryan's ``γ = n/η``: with FedAvg ``G ← G + (η/n)·ΣΔ_i`` this replaces ``G`` by
    ``X`` when the other updates are small (n = participants of the round, η = server lr)."""
    if server_lr <= 0:
        raise ValueError(f"scaling: server_lr must be > 0 to compute γ = n/η, got {server_lr}")
    return num_participants / server_lr


@UPDATE_ATTACKS.register("scaling")
class Scaling(UpdateAttack):
    """Model replacement: boost the malicious update so that it survives averaging.

    ``gamma=None`` uses ``γ = n/η`` with ``n = view.num_participants`` and ``η = view.server_lr``
    (model replacement, docs/conventions.md §C26); a number fixes ``γ`` (e.g. the
    FLTrust-lineage "Scaling attack" with ``γ = n`` when η = 1). Statistics source: own update only.
    """

    paper: ClassVar[str] = "Bagdasaryan et al. 2020, How to Backdoor Federated Learning (AISTATS)"
    knowledge: ClassVar[Knowledge] = "own"
    needs_defense: ClassVar[bool] = False

    def __init__(self, gamma: float | None = None) -> None:
        self.gamma = None if gamma is None else float(gamma)

    def per_client(self) -> bool:
        """A fixed ``gamma`` needs nothing; ``γ = n/η`` needs the round's participant count."""
        return self.gamma is not None

    def craft(self, view: AdversaryView) -> MaliciousReplies:
        gamma = self.gamma
        if gamma is None:
            gamma = replacement_gamma(view.num_participants, view.server_lr)
        return MaliciousReplies(scaling_attack(view.own, gamma))
