"""Contracts of the two kinds of attack and of what the adversary is allowed to see."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from flwr.app import RecordDict

from fedpoison.aggregators.base import Aggregator
from fedpoison.attacks.threat import Knowledge
from fedpoison.registry import Registry


@dataclass(frozen=True)
class AdversaryView:
    """Everything an update attack may use in one round, and nothing more.

    Knowledge is enforced by construction: ``benign`` is ``None`` unless the threat model
    grants ``knowledge="all"``; ``defense``/``f`` are ``None`` unless ``knows_defense``.

    Attributes:
        own: honest updates the malicious participants computed this round, ``(m, d)``.
        benign: the benign participants' updates ``(n − m, d)``, or ``None``.
        num_participants: ``n``, the number of rows the server will aggregate.
        global_weights: flat current global model ``(d,)`` (public: it was broadcast).
        server_lr: the server learning rate η (public protocol parameter).
        generator: the adversary's only source of randomness this round.
        defense: the server's rule, when known.
        f: the defense's assumed Byzantine count, when known.
        server_round: 1-based round number.
    """

    own: torch.Tensor
    benign: torch.Tensor | None
    num_participants: int
    global_weights: torch.Tensor
    server_lr: float
    generator: torch.Generator
    defense: Aggregator | None = None
    f: int | None = None
    server_round: int = 1

    @property
    def num_malicious(self) -> int:
        """``m``, the malicious participants this round."""
        return int(self.own.shape[0])

    @property
    def known(self) -> torch.Tensor:
        """All updates the adversary knows: its own, plus the benign ones when granted."""
        return self.own if self.benign is None else torch.cat([self.own, self.benign])


@dataclass(frozen=True)
class MaliciousReplies:
    """What the adversary sends for its ``m`` participants: rows ``(m, d)`` and, optionally,
    the ``num-examples`` each reports (``None`` = keep the honest counts)."""

    updates: torch.Tensor
    num_examples: torch.Tensor | None = None


class UpdateAttack(ABC):
    """An attack that replaces the malicious participants' updates on the server side."""

    name: ClassVar[str]
    paper: ClassVar[str]
    knowledge: ClassVar[Knowledge] = "own"
    needs_defense: ClassVar[bool] = False

    @abstractmethod
    def craft(self, view: AdversaryView) -> MaliciousReplies:
        """Malicious rows for ``view.num_malicious`` participants; never mutates the view."""

    def required_knowledge(self) -> Knowledge:
        """What this configured instance needs; a variant (e.g. partial knowledge) may need
        more than the class minimum ``knowledge``. :func:`~fedpoison.attacks.spec.check_attack`
        checks this against the threat model."""
        return self.knowledge

    def requires_defense(self) -> bool:
        """Whether this configured instance must be told the defense (``threat.knows_defense``)."""
        return self.needs_defense

    def check_defense(self, defense: Aggregator) -> None:  # noqa: B027 - optional hook
        """Raise ``ValueError`` before round 1 if this attack cannot work against ``defense``."""


class DataAttack(ABC):
    """An attack that poisons a malicious client's local training data in its ClientApp."""

    name: ClassVar[str]
    paper: ClassVar[str]

    @abstractmethod
    def poison(
        self, x: torch.Tensor, y: torch.Tensor, num_classes: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Poisoned copies of ``(x, y)``; the inputs are left untouched."""

    def success_set(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Test inputs and labels whose accuracy is the attack success rate, or ``None``.

        Backdoors return the triggered test inputs whose true label is not the target,
        labelled with the target; the server evaluates the global model on them each round.
        """
        return None


class ReplyAttack(ABC):
    """An attack on the reply message itself, applied in a malicious ClientApp after training:
    the plumbing faults a hostile client can send (NaN, wrong shapes, absurd counts, ...)."""

    name: ClassVar[str]
    paper: ClassVar[str]

    @abstractmethod
    def corrupt(self, content: RecordDict, generator: torch.Generator) -> RecordDict:
        """A corrupted copy of the reply ``content``; raising is allowed (a crashing client)."""


UPDATE_ATTACKS: Registry[type[UpdateAttack]] = Registry("update attack")
DATA_ATTACKS: Registry[type[DataAttack]] = Registry("data attack")
