"""Sign flipping: each malicious client sends its honest update, negated and scaled
(docs/conventions.md §C25)."""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.attacks.base import UPDATE_ATTACKS, AdversaryView, MaliciousReplies, UpdateAttack
from fedpoison.attacks.threat import Knowledge


def sign_flip_attack(own: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """``−scale · Δ_i`` for every malicious client's honest update ``Δ_i`` (rows of ``own``).

    Convention: negating a model delta is the same as negating the gradient it came from
    (``Δ ≈ −lr·g``), so the gradient-space description ("send −g") carries over unchanged.
    Statistics source: none; each client uses only its own update.

    Example:

        >>> import torch
        >>> from fedpoison.attacks import sign_flip_attack
        >>> sign_flip_attack(torch.tensor([[1.0, -2.0], [0.5, 0.25]]), scale=4.0).tolist()
        [[-4.0, 8.0], [-2.0, -1.0]]
    """
    return own * (-scale)


@UPDATE_ATTACKS.register("sign_flip")
class SignFlip(UpdateAttack):
    """Sign flipping (e.g. Karimireddy et al. 2021 / Li et al. 2019 "RSA" baselines)."""

    paper: ClassVar[str] = "Li et al. 2019, RSA (AAAI), sign-flipping baseline"
    knowledge: ClassVar[Knowledge] = "own"
    needs_defense: ClassVar[bool] = False

    def __init__(self, scale: float = 1.0) -> None:
        self.scale = float(scale)

    def per_client(self) -> bool:
        return True

    def craft(self, view: AdversaryView) -> MaliciousReplies:
        return MaliciousReplies(sign_flip_attack(view.own, self.scale))
