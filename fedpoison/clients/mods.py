"""``poison_mod``: a malicious client's update attack or reply fault as a Flower ``Mod``.

A Flower mod wraps a ClientApp's handlers (``ClientApp(mods=[...])``; each is called as
``mod(message, context, call_next)`` and returns the reply). :func:`poison_mod` lets a user's
own ClientApp — any that replies to ``train`` with ``"arrays"`` (the trained model, in the
received global model's layout) and a ``MetricRecord`` holding ``"num-examples"``, as
Flower's quickstarts do — behave maliciously on the partitions the threat model picks:

- an :class:`~fedpoison.attacks.base.UpdateAttack` that works on one client's own update
  (:meth:`~fedpoison.attacks.base.UpdateAttack.per_client`: sign flip, Gaussian noise,
  scaling with a fixed ``gamma``, ``num-examples`` inflation) is crafted from the node's own
  delta ``Δ = w_trained − w_global`` (float32, flattened in the global record's key order,
  docs/conventions.md §C1) on a one-row view with ``knowledge="own"``; the reply carries
  ``w_global + crafted row`` (and the attack's ``num-examples`` when it reports counts).
  The colluding attacks (ALIE, IPM, Min-Max, Min-Sum, Fang, adaptive) need the other clients'
  updates and are refused: :class:`fedpoison.Adversary` runs them on the server;
- a :class:`~fedpoison.attacks.base.ReplyAttack` (``malformed``) corrupts the reply itself,
  exactly as in fedpoison's own ClientApp (which runs its reply attacks through this mod).

Randomness: the update attack's generator is ``torch_generator(seed, ADVERSARY, round,
partition)`` (one per client: a client-side attacker does not share a stream with the others,
so its Gaussian rows differ from the server-side adversary's), the reply attack's
``torch_generator(seed, REPLY_ATTACK, round, partition)`` as in fedpoison's ClientApp.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.app.message_type import MessageType
from flwr.clientapp.typing import ClientAppCallable

from fedpoison.attacks.base import (
    DATA_ATTACKS,
    REPLY_ATTACKS,
    UPDATE_ATTACKS,
    DataAttack,
    ReplyAttack,
    UpdateAttack,
)
from fedpoison.attacks.spec import build_view
from fedpoison.attacks.threat import ThreatModel
from fedpoison.clients.malicious import MaliciousPartitions
from fedpoison.protocol import NUM_EXAMPLES, PARTITION_ID, SERVER_ROUND
from fedpoison.records import record_of
from fedpoison.seeding import ADVERSARY, REPLY_ATTACK, torch_generator
from fedpoison.training.flat import ModelLayout, flatten, unflatten

ARRAYS = "arrays"  # where Flower's strategies put the model (their default arrayrecord_key)
_OWN = ThreatModel(knowledge="own")  # one client knows its own update and nothing else


@dataclass(frozen=True)
class PoisonMod(ABC):
    """A Flower ClientApp mod that attacks the ``train`` replies of the malicious partitions
    in the active rounds; every other message and reply passes through untouched.

    Build it with :func:`poison_mod`. Picklable (Ray workers receive it with the ClientApp).

    Attributes:
        partitions: the malicious partitions and the rounds they attack in.
        seed: the run's seed; every random stream is derived from it, the round and the
            partition id.
    """

    partitions: MaliciousPartitions
    seed: int

    def __call__(self, msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
        """Flower's ``Mod`` contract: run ``call_next`` and return its reply, attacked when
        this node's partition is malicious and the adversary acts in the message's round.
        Error replies and replies without an ``"arrays"`` ``ArrayRecord`` are returned as
        they are (by an update attack also those whose arrays do not match the received
        model's layout: the server's validation decides about them)."""
        if msg.metadata.message_type != MessageType.TRAIN:
            return call_next(msg, context)
        pid = _partition_id(context)
        if pid not in self.partitions.ids:
            return call_next(msg, context)
        server_round = _server_round(msg)
        if not self.partitions.threat.active(server_round):
            return call_next(msg, context)
        reply = call_next(msg, context)
        if reply.has_error() or not isinstance(reply.content.get(ARRAYS), ArrayRecord):
            return reply
        content = self.poison(msg.content, reply.content, pid, server_round)
        return reply if content is None else Message(content, reply_to=msg)

    @abstractmethod
    def poison(
        self, received: RecordDict, reply: RecordDict, partition_id: int, server_round: int
    ) -> RecordDict | None:
        """The content to send instead of ``reply`` (a new ``RecordDict``; ``reply`` is not
        modified), or ``None`` to send ``reply`` as it is. ``received`` is the train
        message's content (the global model under ``"arrays"``)."""


@dataclass(frozen=True)
class UpdateMod(PoisonMod):
    """:class:`PoisonMod` crafting a per-client :class:`UpdateAttack` on the node's own delta."""

    attack: UpdateAttack

    def poison(
        self, received: RecordDict, reply: RecordDict, partition_id: int, server_round: int
    ) -> RecordDict | None:
        global_record = record_of(received, ARRAYS, ArrayRecord)
        layout = ModelLayout.of(global_record)
        global_weights = flatten(global_record, layout)
        try:
            trained = flatten(record_of(reply, ARRAYS, ArrayRecord), layout)
        except ValueError:
            return None  # not the received model's layout: the server's validation decides
        own = (trained - global_weights).unsqueeze(0)
        view = build_view(
            own,
            own[:0],
            threat=_OWN,
            global_weights=global_weights,
            server_lr=1.0,  # unknown to a client; per-client attacks do not read it
            generator=torch_generator(self.seed, ADVERSARY, server_round, partition_id),
            server_round=server_round,
        )
        crafted = self.attack.craft(view)
        row = crafted.updates[0].to(torch.float32)
        content: dict[str, Any] = {**reply, ARRAYS: unflatten(global_weights + row, layout)}
        if crafted.num_examples is not None:
            count = int(crafted.num_examples[0])
            for name, record in reply.items():
                if isinstance(record, MetricRecord) and NUM_EXAMPLES in record:
                    content[name] = MetricRecord({**record, NUM_EXAMPLES: count})
        return RecordDict(content)


@dataclass(frozen=True)
class ReplyMod(PoisonMod):
    """:class:`PoisonMod` corrupting the reply with a :class:`ReplyAttack`."""

    attack: ReplyAttack

    def poison(
        self, received: RecordDict, reply: RecordDict, partition_id: int, server_round: int
    ) -> RecordDict | None:
        generator = torch_generator(self.seed, REPLY_ATTACK, server_round, partition_id)
        return self.attack.corrupt(reply, generator)


def poison_mod(
    attack: UpdateAttack | ReplyAttack | str,
    *,
    malicious: Iterable[int] | None = None,
    num_malicious: int | None = None,
    threat: ThreatModel | None = None,
    num_partitions: int | None = None,
    start_round: int = 1,
    end_round: int | None = None,
    seed: int = 0,
) -> PoisonMod:
    """A Flower ``Mod`` making a ClientApp's malicious partitions attack their ``train`` replies.

    Whether a node is malicious is decided from its ``context.node_config["partition-id"]``
    (Flower's simulation sets it; in a deployment pass ``--node-config "partition-id=…"``),
    never told by the server. ``num_malicious=k, num_partitions=n, seed=s`` picks exactly the
    partitions fedpoison's CLI picks for ``threat.num_malicious=k federation.num_clients=n
    seed=s`` (:mod:`fedpoison.clients.malicious`). Deterministic for (seed, round, partition).

    Args:
        attack: a per-client :class:`~fedpoison.attacks.base.UpdateAttack` (``SignFlip()``,
            ``Gaussian()``, ``Scaling(gamma=…)``, ``NumExamplesInflation()``), a
            :class:`~fedpoison.attacks.base.ReplyAttack` (``Malformed()``), or a registered
            name of either (``"sign_flip"``, ``"malformed"``, ...).
        malicious: the malicious partition ids.
        num_malicious: how many partitions are malicious, drawn once from ``seed`` among
            ``num_partitions``.
        threat: a :class:`~fedpoison.attacks.threat.ThreatModel` instead of the two above
            (its pool and its ``start_round``/``end_round``; its knowledge is irrelevant
            here: a client knows only its own update).
        num_partitions: the number of partitions (needed by ``num_malicious`` and ``threat``
            draws; with ``malicious`` it checks the ids).
        start_round, end_round: the attack acts in rounds ``start_round ≤ r ≤ end_round``
            (from the train message's ``config["server-round"]``).
        seed: the run's seed.

    Returns:
        The mod, to put in ``ClientApp(mods=[...])``; only ``train`` messages are attacked.

    Raises:
        ValueError: not exactly one of ``malicious``/``num_malicious``/``threat``, a bad
            round window, or an update attack that needs more than one client's own update
            (run it on the server with ``fedpoison.Adversary``).
        TypeError, KeyError: ``attack`` is neither an update/reply attack nor a registered
            name of one (a data attack names :func:`~fedpoison.clients.data.poison_data`).

    Example:

        >>> from flwr.clientapp import ClientApp
        >>> from fedpoison.clients import poison_mod
        >>> mod = poison_mod("sign_flip", num_malicious=2, num_partitions=10, seed=0)
        >>> sorted(mod.partitions.ids)  # the partitions `fedpoison threat.num_malicious=2` picks
        [0, 4]
        >>> app = ClientApp(mods=[mod])  # then register @app.train() etc. as usual
        >>> poison_mod("alie", num_malicious=2, num_partitions=10)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: poison_mod: attack alie needs more than one client's own update ...
    """
    partitions = MaliciousPartitions.resolve(
        "poison_mod",
        malicious=malicious,
        num_malicious=num_malicious,
        threat=threat,
        num_partitions=num_partitions,
        start_round=start_round,
        end_round=end_round,
        seed=seed,
    )
    built = _client_attack(attack)
    if isinstance(built, ReplyAttack):
        return ReplyMod(partitions, int(seed), built)
    return UpdateMod(partitions, int(seed), built)


def _client_attack(attack: UpdateAttack | ReplyAttack | str) -> UpdateAttack | ReplyAttack:
    """``attack`` built from its name and checked to be runnable by one client."""
    if isinstance(attack, DataAttack) or (isinstance(attack, str) and attack in DATA_ATTACKS):
        name = attack if isinstance(attack, str) else attack.name
        raise TypeError(
            f"poison_mod: {name} is a data attack; poison the node's training data with "
            "fedpoison.clients.poison_data or PoisonedDataset"
        )
    built: object = attack
    if isinstance(attack, str):
        registry = REPLY_ATTACKS if attack in REPLY_ATTACKS else UPDATE_ATTACKS
        built = registry.build(attack, "attack")
    if isinstance(built, ReplyAttack):
        return built
    if not isinstance(built, UpdateAttack):
        raise TypeError(
            "poison_mod: attack must be an UpdateAttack, a ReplyAttack or a registered name, "
            f"got {type(built).__name__}"
        )
    if not built.per_client():
        raise ValueError(
            f"poison_mod: attack {built.name} needs more than one client's own update (other "
            "clients' updates, the defense or the round's participant count); run it on the "
            f"server with fedpoison.Adversary(strategy, attack={built.name!r}, ...) — per-client "
            "attacks: sign_flip, gaussian (mode='blanchard'), scaling (with gamma=…), "
            "num_examples_inflation"
        )
    return built


def _partition_id(context: Context) -> int:
    try:
        return int(context.node_config[PARTITION_ID])
    except KeyError:
        raise ValueError(
            "poison_mod: the node has no node_config['partition-id'] (Flower's simulation sets "
            'it; a deployed SuperNode needs --node-config "partition-id=<id>")'
        ) from None


def _server_round(msg: Message) -> int:
    config = msg.content.get("config")
    if not isinstance(config, ConfigRecord) or SERVER_ROUND not in config:
        raise ValueError(
            "poison_mod: the train message has no config['server-round'] (Flower's strategies "
            "send it); the attack's active rounds cannot be decided"
        )
    return int(config[SERVER_ROUND])  # type: ignore[arg-type]
