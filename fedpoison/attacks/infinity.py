"""ByzFL's ``Inf`` attack (no paper): every attacker sends ``+∞`` in every coordinate.

Registered as ``infinity``: Hydra's override grammar reads ``attack=inf`` as the float ∞.

A robustness smoke test: a rule must give a finite aggregate or refuse the round, never a
silent NaN. fedpoison's rules refuse non-finite rows (``"<rule>: updates contain NaN/Inf in
rows [...]"``), so each attacked round ends in the server's skip policy: the run stops with
that message, or the round is skipped under ``robustness.skip_invalid_rounds=true``. The rows
keep the updates' dtype (ByzFL returns float64 whatever the input).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from fedpoison.attacks.base import UPDATE_ATTACKS, AdversaryView, MaliciousReplies, UpdateAttack
from fedpoison.attacks.threat import Knowledge


def infinity_attack(own: torch.Tensor, num_malicious: int) -> torch.Tensor:
    """``(m, d)`` rows of ``+∞`` with the dtype and device of ``own`` ``(·, d)``.

    Example:

        >>> import torch
        >>> from fedpoison.attacks import infinity_attack
        >>> infinity_attack(torch.zeros(1, 3), 2).tolist()
        [[inf, inf, inf], [inf, inf, inf]]
    """
    return torch.full((num_malicious, own.shape[1]), math.inf, dtype=own.dtype, device=own.device)


@UPDATE_ATTACKS.register("infinity")
class Infinity(UpdateAttack):
    """Infinity (ByzFL's Inf): all attackers send ``+∞`` everywhere (needs no knowledge)."""

    paper: ClassVar[str] = "ByzFL (EPFL), Inf attack; no paper"
    knowledge: ClassVar[Knowledge] = "own"
    needs_defense: ClassVar[bool] = False

    def per_client(self) -> bool:
        """Needs nothing: a malicious ClientApp can send its own ∞ row."""
        return True

    def reads_own_updates(self) -> bool:
        """Only the dimension, dtype and device of ``view.own``."""
        return False

    def craft(self, view: AdversaryView) -> MaliciousReplies:
        return MaliciousReplies(infinity_attack(view.own, view.num_malicious))
