"""``TrainingAttack``: a data poisoning plus a shaping of the malicious client's training.

PGD, Neurotoxin and edge-case training poison data like another data attack does (by default
the BadNets ``backdoor``) and add a :class:`~fedpoison.attacks.shaping.Shaping`; this base
delegates the data side to that inner attack, so any data attack composes with any shaping
(``pgd`` over ``dba``, ``neurotoxin`` over ``blended``, ...).
"""

from __future__ import annotations

import copy

import torch

from fedpoison.attacks.backdoor import Backdoor
from fedpoison.attacks.base import DataAttack
from fedpoison.attacks.shaping import ClientRound


class TrainingAttack(DataAttack):
    """Poison with ``poison`` (default ``Backdoor()``); subclasses add :meth:`shaping`.

    Args:
        poison: the inner data attack whose poisoned data the shaped training uses and whose
            success sets are measured.
    """

    def __init__(self, poison: DataAttack | None = None) -> None:
        if poison is not None and not isinstance(poison, DataAttack):
            raise TypeError(
                f"{self.name}: poison must be a DataAttack, got {type(poison).__name__}"
            )
        self.inner: DataAttack = Backdoor() if poison is None else poison

    def poison(
        self, x: torch.Tensor, y: torch.Tensor, num_classes: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.inner.poison(x, y, num_classes, generator)

    def success_set(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        return self.inner.success_set(x, y)

    def success_sets(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        return self.inner.success_sets(x, y)

    def for_client(self, client: ClientRound) -> DataAttack:
        """This attack with its inner attack bound to ``client`` (a shallow copy)."""
        bound = self.inner.for_client(client)
        if bound is self.inner:
            return self
        out = copy.copy(self)
        out.inner = bound
        return out
