"""The one ClientApp (Flower Message API) every engine runs.

``train``: load the received global model, train it on this node's partition (poisoned when
the node is malicious and the adversary is active), reply with the weights and
``num-examples``. ``evaluate``: local accuracy/loss. ``query``: report the partition id so any
Grid (Flower's included) can map node ids to clients.

Whether a node is malicious is decided here, from the threat model and the seed: the server
never tells a client. Data poisoning and the shaping of the malicious training
(:func:`~fedpoison.clients.data.malicious_round`, :mod:`fedpoison.attacks.shaping`) and reply
attacks (:func:`~fedpoison.clients.mods.poison_mod`) go through the same public pieces a
user's own ClientApp takes; update attacks are crafted on the server (the colluding adversary).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod
from hydra.utils import instantiate

from fedpoison.attacks.base import DATA_ATTACKS, REPLY_ATTACKS, DataAttack
from fedpoison.attacks.threat import ThreatModel
from fedpoison.clients.data import MaliciousRound, malicious_round
from fedpoison.clients.mods import poison_mod
from fedpoison.federation import FederationSpec, load_federation
from fedpoison.privacy.base import Privacy
from fedpoison.protocol import (
    NUM_EXAMPLES,
    PARTITION_ID,
    SERVER_ROUND,
    TRAIN_LOSS,
)
from fedpoison.records import (
    new_content,
    new_metrics,
    record_of,
    reply_message,
    stacked_records,
    to_record,
    to_state_dict,
)
from fedpoison.seeding import PRIVACY, TRAINING, torch_generator
from fedpoison.training.batched import train_clients, train_stacked, unstack
from fedpoison.training.local import LocalTraining, evaluate, local_train
from fedpoison.training.momentum import WorkerMomentum

PREVIOUS_GLOBAL = "fedpoison.previous-global"
"""Key of the node's context state where a malicious node keeps the last global model it
received, for attacks that read it (Neurotoxin's ``global_diff``)."""
MOMENTUM = "worker-momentum"
"""The ``Context.state`` key of a client's momentum buffers (an ``ArrayRecord``)."""
Trained = tuple[dict[str, torch.Tensor] | None, float, int, ArrayRecord | None]
"""A client's ``(trained weights, mean loss, example count, reply record)``: the weights, or
their :func:`~fedpoison.records.to_record` when built ahead (batched training, no worker
momentum), never both."""


@dataclass(frozen=True)
class ClientSpec:
    """Everything a ClientApp process needs, small and picklable.

    Attributes:
        federation: dataset, partition and model configs.
        threat: the threat model (decides which partition ids are malicious).
        data_attack: ``_target_`` config of the malicious clients' data poisoning, or None.
        reply_attack: ``_target_`` config of a malicious client's reply corruption, or None.
        device: torch device for local training (``cpu``, ``cuda``, ``cuda:1``...).
        privacy: ``_target_`` config of the privacy mechanism (local DP mod, DP-SGD), or None.
        worker_momentum: every client's momentum across rounds (REFERENCES D26), kept in its
            node's ``Context.state``; none by default.
        skip_malicious_training: a malicious node does not train in the rounds the adversary
            acts: it replies with the received model unchanged (a zero update) and its example
            count, without a ``train-loss``. Only for an update attack that never reads its
            own honest rows (:meth:`~fedpoison.attacks.base.UpdateAttack.reads_own_updates`),
            which the server replaces before anything reads them; so no data or reply attack,
            whose poisoned training or reply would be lost, and no worker momentum, whose
            buffer a skipped round would leave behind for the rounds after ``end_round``.
    """

    federation: FederationSpec
    threat: ThreatModel
    data_attack: dict[str, Any] | None = None
    device: str = "cpu"
    reply_attack: dict[str, Any] | None = None
    privacy: dict[str, Any] | None = None
    worker_momentum: WorkerMomentum = WorkerMomentum()
    skip_malicious_training: bool = False

    def __post_init__(self) -> None:
        if self.skip_malicious_training and (
            self.data_attack is not None
            or self.reply_attack is not None
            or self.worker_momentum.active
        ):
            raise ValueError(
                "skip_malicious_training needs no data attack, no reply attack and no worker "
                "momentum: their malicious training or reply would be skipped"
            )


def build_privacy(config: dict[str, Any] | None) -> Privacy:
    """The privacy mechanism of ``config`` (``_target_``); no DP when ``None``."""
    return instantiate(config) if config is not None else Privacy()


class _ClientRuntime:
    """Per-process state built lazily from a :class:`ClientSpec` (data, model, pool)."""

    def __init__(self, spec: ClientSpec) -> None:
        self.spec = spec
        self.fed = load_federation(spec.federation)
        self.model = self.fed.new_model().to(spec.device)
        self.device = torch.device(spec.device)
        self._weights = self.model.state_dict(keep_vars=False)  # views of the live parameters
        self._record: ArrayRecord | None = None
        self._config: ConfigRecord | None = None
        self._procedure = LocalTraining()
        self._state: list[torch.Tensor] = []
        self._trained: dict[tuple[int, int], Trained] = {}
        self.data_attack: DataAttack | None = (
            None
            if spec.data_attack is None
            else DATA_ATTACKS.build(spec.data_attack, "attack.data")
        )
        self.privacy = build_privacy(spec.privacy)
        self._pool = spec.threat.malicious_ids(spec.federation.num_clients, spec.federation.seed)

    def local_data(
        self, pid: int, server_round: int, state: RecordDict | None = None
    ) -> MaliciousRound:
        """The partition, poisoned (and the training shaping, if any) when ``pid`` is
        malicious and the adversary acts now; call it with the global model loaded.
        ``state`` is the node's context state (the previous global model lives there)."""
        x, y = self.fed.client_data(pid)
        attack = self.data_attack
        if attack is None or not self._poisoned(pid, server_round):
            return MaliciousRound(x, y)
        return malicious_round(
            x,
            y,
            attack,
            partition_id=pid,
            num_classes=self.fed.data.num_classes,
            model=self.model,
            dataset=self.fed.data,
            previous_global=self._previous_global(state),
            leader=self.leader_data(),
            threat=self.spec.threat,
            num_partitions=self.spec.federation.num_clients,
            server_round=server_round,
            seed=self.spec.federation.seed,
        )

    def _poisoned(self, pid: int, server_round: int) -> bool:
        """Whether client ``pid``'s data is poisoned this round (:meth:`local_data`)."""
        return (
            self.data_attack is not None
            and pid in self._pool
            and self.spec.threat.active(server_round)
        )

    def leader_data(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The clean partition of the malicious pool's first attacker, or ``None``."""
        return self.fed.client_data(min(self._pool)) if self._pool else None

    def _previous_global(self, state: RecordDict | None) -> tuple[torch.Tensor, ...] | None:
        """The trainable parameters of the global model this node last received (kept in its
        context state when the attack asks for it), then the current one stored there."""
        attack = self.data_attack
        if state is None or attack is None or not attack.needs_previous_global():
            return None
        before = state.get(PREVIOUS_GLOBAL)
        assert self._record is not None  # load() ran
        state[PREVIOUS_GLOBAL] = self._record
        if not isinstance(before, ArrayRecord):
            return None
        weights = to_state_dict(before)
        names = [name for name, p in self.model.named_parameters() if p.requires_grad]
        return tuple(weights[name] for name in names)

    def procedure(self, config: ConfigRecord) -> LocalTraining:
        """The local training the round's config asks for; parsed once per round (all
        messages of a round share one config record, and each round's is a new one)."""
        if config is not self._config or config[SERVER_ROUND] != self._config[SERVER_ROUND]:
            self._procedure = LocalTraining.from_config(config)
            self._config = config
        return self._procedure

    def decode(self, arrays: ArrayRecord) -> list[torch.Tensor]:
        """The global model's tensors (CPU), decoded once per round (all messages share one
        record)."""
        if arrays is not self._record:
            state = to_state_dict(arrays)
            if list(state) != list(self._weights):
                raise ValueError(
                    f"received arrays {list(state)} do not match the model's {list(self._weights)}"
                )
            self._record, self._state = arrays, list(state.values())
        return self._state

    def load(self, arrays: ArrayRecord) -> None:
        """Load the global model into the local one."""
        self.decode(arrays)
        with torch.no_grad():
            for dst, src in zip(self._weights.values(), self._state, strict=True):
                dst.copy_(src)

    def train(self, content: RecordDict, pid: int, state: RecordDict | None = None) -> RecordDict:
        """Client ``pid``'s reply to a train message: its trained weights (``w_global + m``
        with worker momentum, ``m`` kept in ``state``, its node's ``Context.state``) and example
        count (the reply attack, if any, is the ClientApp's innermost mod). A malicious node
        whose attack shapes its training (:mod:`fedpoison.attacks.shaping`) trains with plain
        local SGD and the attack's hooks, not with the privacy mechanism's DP-SGD."""
        config = record_of(content, "config", ConfigRecord)
        server_round = int(config[SERVER_ROUND])  # type: ignore[arg-type]
        arrays = record_of(content, "arrays", ArrayRecord)
        if self._skips(pid, server_round):
            return self._unchanged(arrays, pid)
        trained = self._trained.pop((server_round, pid), None)
        if trained is None:
            trained = self._train_one(arrays, config, pid, server_round, state)
        weights, loss, count, reply = trained
        if reply is None:
            assert weights is not None  # one of the two is set (Trained)
            if self.spec.worker_momentum.active:
                node_state = RecordDict() if state is None else state
                weights = self._with_momentum(weights, arrays, node_state)
            reply = to_record(weights)
        return new_content(
            {
                "arrays": reply,
                "metrics": new_metrics({NUM_EXAMPLES: int(count), TRAIN_LOSS: float(loss)}),
            }
        )

    def _skips(self, pid: int, server_round: int) -> bool:
        """Whether client ``pid`` skips its training this round (``skip_malicious_training``)."""
        return (
            self.spec.skip_malicious_training
            and pid in self._pool
            and self.spec.threat.active(server_round)
        )

    def _unchanged(self, arrays: ArrayRecord, pid: int) -> RecordDict:
        """The reply of a client that skips its training: the received model (a zero update,
        a copy in the model's tensors) and its example count; no ``train-loss``, since it
        trained none (the round's ``train_loss`` is the mean of the others')."""
        self.load(arrays)
        count = len(self.fed.client_data(pid)[1])
        return new_content(
            {"arrays": to_record(self._weights), "metrics": new_metrics({NUM_EXAMPLES: count})}
        )

    def _train_one(
        self,
        arrays: ArrayRecord,
        config: ConfigRecord,
        pid: int,
        server_round: int,
        state: RecordDict | None,
    ) -> Trained:
        """``(trained weights, mean loss, example count, None)`` of client ``pid`` alone."""
        self.load(arrays)
        data = self.local_data(pid, server_round, state)
        seed = self.spec.federation.seed
        batches = torch_generator(seed, TRAINING, server_round, pid)
        procedure = self.procedure(config)
        if data.shaping is None:
            noise = torch_generator(seed, PRIVACY, server_round, pid)
            loss = self.privacy.train(
                self.model, data.x, data.y, procedure, batches, noise, self.device
            )
        else:
            loss = local_train(
                self.model, data.x, data.y, procedure, batches, self.device, data.shaping
            )
        return self._weights, loss, len(data.y), None

    def _with_momentum(
        self, weights: dict[str, torch.Tensor], arrays: ArrayRecord, state: RecordDict
    ) -> dict[str, torch.Tensor]:
        """``w_global + m`` after the momentum step of D26; the new ``m`` goes to ``state``."""
        kept = state.get(MOMENTUM)
        buffers = to_state_dict(kept) if isinstance(kept, ArrayRecord) else {}
        sent, new = self.spec.worker_momentum.apply(weights, self.decode(arrays), buffers)
        state[MOMENTUM] = to_record(new)
        return sent

    def train_together(
        self, content: RecordDict, pids: list[int], states: list[RecordDict]
    ) -> None:
        """Train clients ``pids`` (node context states ``states``) on one round's
        ``content`` as one batched call (:func:`~fedpoison.training.batched.train_clients`,
        ``engine=vectorized``): each gets its own (poisoned) data and generator, exactly as
        :meth:`train` gives it; the replies wait for :meth:`train`, so the ClientApp's mods
        (reply attacks, local DP) still run on each. Malicious clients whose attack shapes
        their training (:meth:`~fedpoison.attacks.base.DataAttack.shaping`) are left to
        :meth:`train`. If the batch cannot be trained (a client without examples), nothing is
        kept and each client trains alone, failing alone."""
        self._trained.clear()  # a round's replies not asked for (a missed deadline) go
        config = record_of(content, "config", ConfigRecord)
        server_round = int(config[SERVER_ROUND])  # type: ignore[arg-type]
        jobs = [
            (p, s) for p, s in zip(pids, states, strict=True) if self._batchable(p, server_round)
        ]
        if not jobs:
            return
        self.load(record_of(content, "arrays", ArrayRecord))
        x, y, sizes = self._batch_data(jobs, server_round)
        seed = self.spec.federation.seed
        generators = [torch_generator(seed, TRAINING, server_round, pid) for pid, _ in jobs]
        try:
            stacked, losses = train_stacked(
                self.model, x, y, sizes, self.procedure(config), generators, self.device
            )
        except ValueError:
            return
        # the replies' records, built for all at once; with worker momentum they are built
        # from the momentum-corrected weights instead, in train (the only use of the weights)
        if self.spec.worker_momentum.active:
            ahead: list[tuple[dict[str, torch.Tensor] | None, ArrayRecord | None]] = [
                (weights, None) for weights in unstack(stacked)
            ]
        else:
            ahead = [(None, reply) for reply in stacked_records(stacked)]
        for (pid, _), (weights, reply), loss, count in zip(jobs, ahead, losses, sizes, strict=True):
            self._trained[(server_round, pid)] = (weights, loss, count, reply)

    def _batch_data(
        self, jobs: list[tuple[int, RecordDict]], server_round: int
    ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """The jobs' clients' :meth:`local_data` concatenated, and each one's example count;
        gathered in one ``index_select`` when none is poisoned this round (the same rows)."""
        if not any(self._poisoned(pid, server_round) for pid, _ in jobs):
            return self.fed.clients_data([pid for pid, _ in jobs])
        data = [self.local_data(pid, server_round, state) for pid, state in jobs]
        sizes = [len(d.y) for d in data]
        return torch.cat([d.x for d in data]), torch.cat([d.y for d in data]), sizes

    def _batchable(self, pid: int, server_round: int) -> bool:
        """Whether client ``pid`` trains plain local SGD this round (no shaping attack, no
        skipped training)."""
        if self._skips(pid, server_round):
            return False
        attack = self.data_attack
        if attack is None or pid not in self._pool or not self.spec.threat.active(server_round):
            return True
        return type(attack).shaping is DataAttack.shaping and not attack.needs_previous_global()

    def evaluate(self, content: RecordDict, pid: int) -> RecordDict:
        """Client ``pid``'s local accuracy and loss of the received model."""
        self.load(record_of(content, "arrays", ArrayRecord))
        x, y = self.fed.client_data(pid)
        loss, acc = evaluate(self.model, x, y, self.device)
        metrics = new_metrics({NUM_EXAMPLES: len(y), "loss": float(loss), "accuracy": float(acc)})
        return new_content({"metrics": metrics})


_RUNTIMES: dict[str, _ClientRuntime] = {}


def _runtime(spec: ClientSpec, key: str | None = None) -> _ClientRuntime:
    """One runtime per spec per process (Ray actors and the inline engine reuse it);
    ``key`` is ``repr(spec)``, passed by callers that computed it once."""
    key = repr(spec) if key is None else key
    if key not in _RUNTIMES:
        _RUNTIMES[key] = _ClientRuntime(spec)
    return _RUNTIMES[key]


def train_together(
    spec: ClientSpec, content: RecordDict, pids: list[int], states: list[RecordDict]
) -> None:
    """Batch-train clients ``pids`` of this process on ``content`` ahead of their ``train``
    messages (:meth:`_ClientRuntime.train_together`)."""
    _runtime(spec).train_together(content, pids, states)


def warm_up(spec: ClientSpec, batched: bool = False) -> None:
    """Load this process's data and model now rather than inside the first ClientApp call;
    ``batched``: also pay :func:`~fedpoison.training.batched.train_clients`' first-use cost
    (torch.func's imports and tracing, about 2 s) on one example of client 0."""
    runtime = _runtime(spec)
    if batched:
        x, y = runtime.fed.client_data(0)
        once = LocalTraining(local_steps=1, batch_size=1)
        train_clients(runtime.model, [(x[:1], y[:1])], once, [torch.Generator()], runtime.device)


def client_mods(spec: ClientSpec) -> list[Mod]:
    """The ClientApp's mods, outermost first: the privacy mechanism's (local DP), then the
    reply attack, so that local DP sees the reply as the malicious client corrupted it."""
    seed = spec.federation.seed
    mods = [*build_privacy(spec.privacy).client_mods(seed)]
    if spec.reply_attack is not None:
        attack = REPLY_ATTACKS.build(spec.reply_attack, "attack.reply")
        threat, num_clients = spec.threat, spec.federation.num_clients
        mods.append(poison_mod(attack, threat=threat, num_partitions=num_clients, seed=seed))
    return mods


def make_client_app(spec: ClientSpec) -> ClientApp:
    """The ClientApp for ``spec``; cheap to pickle (data is loaded inside each process)."""
    app = ClientApp(mods=client_mods(spec))
    key = repr(spec)  # once, not per message

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        pid = int(context.node_config[PARTITION_ID])
        return reply_message(_runtime(spec, key).train(msg.content, pid, context.state), msg)

    @app.evaluate()
    def local_evaluate(msg: Message, context: Context) -> Message:
        pid = int(context.node_config[PARTITION_ID])
        return reply_message(_runtime(spec, key).evaluate(msg.content, pid), msg)

    @app.query()
    def query(msg: Message, context: Context) -> Message:
        pid = int(context.node_config[PARTITION_ID])
        return Message(RecordDict({"metrics": MetricRecord({PARTITION_ID: pid})}), reply_to=msg)

    return app
