"""Contracts of the two kinds of attack and of what the adversary is allowed to see."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from flwr.app import RecordDict

from fedpoison.attacks.shaping import ClientRound, Shaping
from fedpoison.attacks.threat import Knowledge
from fedpoison.registry import ClassRegistry

# Annotations only: importing the pipeline at run time made `fedpoison.clients` fail to import
# in a Flower simulation, where the ServerApp and the ClientApps import fedpoison concurrently
# (KeyError: 'fedpoison.aggregators'; tests/test_example_app.py).
if TYPE_CHECKING:
    from fedpoison.aggregators.pipeline import Defense


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
        defense: the server's deployed defense, when known: the whole
            :class:`~fedpoison.aggregators.pipeline.Defense` (its pre-aggregators
            ``defense.pre``, then its rule ``defense.rule``), live and possibly stateful.
        f: the defense's assumed Byzantine count at its input, when known (each stage's own
            ``f`` follows from it: ``defense.stages(n, f)``).
        server_round: 1-based round number.
        own_ids, benign_ids: the client ids of the ``own`` and ``benign`` rows (ascending),
            when the server passed them (``None`` otherwise, and ``benign_ids`` whenever
            ``benign`` is): what lets an attack follow one client across rounds.
    """

    own: torch.Tensor
    benign: torch.Tensor | None
    num_participants: int
    global_weights: torch.Tensor
    server_lr: float
    generator: torch.Generator
    defense: Defense | None = None
    f: int | None = None
    server_round: int = 1
    own_ids: tuple[int, ...] | None = None
    benign_ids: tuple[int, ...] | None = None

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

    name: ClassVar[str]  # set by @UPDATE_ATTACKS.register(name)
    paper: ClassVar[str]
    knowledge: ClassVar[Knowledge] = "own"
    needs_defense: ClassVar[bool] = False

    @abstractmethod
    def craft(self, view: AdversaryView) -> MaliciousReplies:
        """Craft the rows the malicious participants send this round.

        Called by the strategy's adversary stage once per round in which the threat model is
        active and at least one malicious client participates, before the defense runs.
        Whatever the attack may use is in ``view`` (docs/conventions.md §C4); it must not
        reach for anything else (the global RNG included).

        Args:
            view: the round as the threat model grants it. ``view.own`` ``(m, d)`` holds the
                malicious participants' honest deltas (docs/conventions.md §C1, ascending
                client id, float32, ``m ≥ 1``); ``view.benign`` ``(n − m, d)`` is ``None``
                unless ``threat.knowledge=all``; ``view.defense`` and ``view.f`` are ``None``
                unless ``threat.knows_defense``; ``view.generator`` is the only randomness
                allowed. Neither the view nor its tensors may be modified, and
                ``view.defense`` is the server's live, possibly stateful pipeline: simulate it
                whole on a deep copy (as :func:`~fedpoison.attacks.adaptive.simulated_defense`
                does), never call it directly; ``view.defense.rule`` is its rule.

        Returns:
            :class:`MaliciousReplies` with ``updates`` ``(m, d)``, row ``j`` replacing the
            ``j``-th malicious row (delta form; it is cast to the matrix's dtype and
            device), and optionally ``num_examples`` ``(m,)``, the counts those rows report
            (``None`` keeps the honest counts). Return new tensors, not views of the input.

        Raises:
            ValueError: the view lacks what this configuration needs (e.g. ``benign`` under
                ``threat.knowledge=own``), with the setting to change.
            :func:`~fedpoison.attacks.spec.check_attack` refuses such configurations
            before round 1 from :meth:`required_knowledge` and :meth:`requires_defense`.
        """

    def required_knowledge(self) -> Knowledge:
        """What this configured instance needs; a variant (e.g. partial knowledge) may need
        more than the class minimum ``knowledge``. :func:`~fedpoison.attacks.spec.check_attack`
        checks this against the threat model."""
        return self.knowledge

    def requires_defense(self) -> bool:
        """Whether this configured instance must be told the defense (``threat.knows_defense``)."""
        return self.needs_defense

    def reads_own_updates(self) -> bool:
        """Whether :meth:`craft` reads the values of ``view.own``, the malicious participants'
        honest updates (their count and shape aside). When it does not, the malicious clients
        need not train in the rounds the adversary acts: the CLI's ClientApp then sends the
        received model unchanged (:class:`~fedpoison.clients.app.ClientSpec`,
        ``skip_malicious_training``), whose row the attack replaces unread. True unless an
        attack says otherwise (tests/attacks/test_reads_own_updates.py checks each one that
        does: its rows do not change when ``view.own`` does)."""
        return True

    def per_client(self) -> bool:
        """Whether each malicious client can craft its row alone, from its own honest update:
        no other client's update (the colluding attacks' statistics), no defense, no round-wide
        count such as the number of participants. Such an instance runs in a client's own
        ClientApp (:func:`~fedpoison.clients.mods.poison_mod`, on a one-row view); the others
        run on the server (:class:`~fedpoison.strategies.wrapper.Adversary`). False unless an
        attack says otherwise."""
        return False

    def check_defense(self, defense: Defense) -> None:  # noqa: B027 - optional hook
        """Raise ``ValueError`` before round 1 if this attack cannot work against ``defense``,
        the deployed pipeline (pre-aggregators, then ``defense.rule``) the view will carry."""

    def state_dict(self) -> dict[str, Any]:
        """The state this attack carries across rounds (tensors, numbers), checkpointed with
        the server's (:meth:`~fedpoison.strategies.round.ServerPipeline.state_dict`); ``{}``
        for a stateless attack."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore :meth:`state_dict` (to resume a run); nothing for a stateless attack."""


class DataAttack(ABC):
    """An attack that poisons a malicious client's local training data in its ClientApp."""

    name: ClassVar[str]  # set by @DATA_ATTACKS.register(name)
    paper: ClassVar[str]

    @abstractmethod
    def poison(
        self, x: torch.Tensor, y: torch.Tensor, num_classes: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Poison a malicious client's local training set.

        Called in the malicious client's ClientApp, before local training, in every round in
        which the threat model is active; the server never tells a client it is malicious.

        Args:
            x: the client's training inputs, float32 ``(N, C, H, W)`` as the dataset yields
                them (pixels scaled to ``[0, 1]``, then standardised per channel where the
                dataset config normalises). Must not be modified in place.
            y: the matching labels, int64 ``(N,)`` in ``[0, num_classes)``. Must not be
                modified in place.
            num_classes: the number of classes ``C`` of the dataset.
            generator: the only randomness allowed, seeded from (seed, client id), so the
                client poisons the same examples in every round.

        Returns:
            New tensors ``(x', y')`` with the shapes and dtypes of ``(x, y)`` (the same
            ``N``: poison by changing examples, not by adding them).

        Raises:
            ValueError: the configuration does not fit the data (e.g. a label outside
                ``[0, num_classes)``, a trigger larger than the images).
        """

    def success_set(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Test inputs and labels whose accuracy is the attack success rate, or ``None``.

        Backdoors return the triggered test inputs whose true label is not the target,
        labelled with the target; the server evaluates the global model on them each round.
        """
        return None

    def success_sets(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Named success sets, recorded as ``asr`` (:meth:`success_set`) plus whatever extra
        sets an attack measures (DBA: ``asr_piece0``, ``asr_piece1``, ... with each local
        trigger piece). Default: ``{"asr": success_set}`` or ``{}``."""
        success = self.success_set(x, y)
        return {} if success is None else {"asr": success}

    def for_client(self, client: ClientRound) -> DataAttack:
        """The data attack the malicious client ``client`` poisons with in this round
        (:mod:`fedpoison.attacks.shaping`): the attack itself unless it depends on the client
        (DBA's local piece by rank) or on the received model (A3FL's trigger). Called before
        :meth:`poison` and :meth:`shaping`, which are then called on the returned attack."""
        return self

    def shaping(self, client: ClientRound) -> Shaping | None:
        """How the malicious client ``client`` shapes its own local training and update
        (:class:`~fedpoison.attacks.shaping.Shaping`: gradient masks, projections, boosting),
        or ``None`` for plain local SGD on the poisoned data (the default)."""
        return None

    def success_depends_on_model(self) -> bool:
        """Whether :meth:`for_client` depends on the received global model (A3FL's trigger):
        the server then measures each attacked round's ASR with the success sets of
        ``for_client(leader)``, re-derived from the global model the attackers received and
        the clean partition of the pool's first attacker."""
        return False

    def needs_previous_global(self) -> bool:
        """Whether :meth:`shaping` reads ``client.previous_global`` (the ClientApp then keeps
        the last global model a malicious node received in the node's context state)."""
        return False


class ReplyAttack(ABC):
    """An attack on the reply message itself, applied in a malicious ClientApp after training:
    the plumbing faults a hostile client can send (NaN, wrong shapes, absurd counts, ...)."""

    name: ClassVar[str]  # set by @REPLY_ATTACKS.register(name)
    paper: ClassVar[str]

    @abstractmethod
    def corrupt(self, content: RecordDict, generator: torch.Generator) -> RecordDict:
        """Corrupt a malicious client's training reply before it is sent.

        Called in the malicious client's ClientApp after local training, in every round in
        which the threat model is active.

        Args:
            content: the honest reply: ``"arrays"`` (an ``ArrayRecord`` of the trained model
                in the global model's layout) and ``"metrics"`` (a ``MetricRecord`` with
                ``"num-examples"`` and ``"train-loss"``). Must not be modified in place;
                build a new ``RecordDict``.
            generator: the only randomness allowed, seeded from (seed, round, client id).

        Returns:
            The ``RecordDict`` to send, in whatever state of disrepair the attack wants
            (wrong shapes or dtypes, missing keys, non-finite values, absurd counts); the
            server must reject what it cannot use and record why.

        Raises:
            Exception: any, to simulate a crashing client; the engine turns it into an error
                reply.
        """


UPDATE_ATTACKS: ClassRegistry[UpdateAttack] = ClassRegistry("update attack", UpdateAttack)
DATA_ATTACKS: ClassRegistry[DataAttack] = ClassRegistry("data attack", DataAttack)
REPLY_ATTACKS: ClassRegistry[ReplyAttack] = ClassRegistry("reply attack", ReplyAttack)
