"""RobustStrategy: a Flower ``Strategy`` that aggregates with a robust rule; it only orchestrates.

One round: :meth:`Participation.plan` samples (seeded by round) → ``configure_train`` sends the
global model → replies are validated and ordered by client id (:func:`collect_replies`) →
:func:`aggregate_round` (reply policy, adversary, central DP, FLTrust server step, defense,
step) → federated evaluation → server-side evaluation → the :class:`RoundRecord` goes to the
recorder with the new model.

Faulty replies follow :class:`ReplyPolicy`; a round left with too few rows for the defense's
bound raises :class:`RoundError`, or is skipped with the reason recorded — never silently.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from logging import INFO
from typing import Any, Protocol

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.app.message_type import MessageType
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy
from flwr.supercore import log

from fedpoison.aggregators.base import AGGREGATORS, Aggregator
from fedpoison.aggregators.flat_model import FlatModel
from fedpoison.aggregators.pipeline import Defense
from fedpoison.aggregators.pre import PRE_AGGREGATORS, PreAggregator
from fedpoison.privacy.base import Privacy
from fedpoison.protocol import SERVER_ROUND
from fedpoison.records import instruction_message
from fedpoison.strategies.adversary import AdversaryStage
from fedpoison.strategies.availability import Availability
from fedpoison.strategies.client_eval import aggregate_evaluations, evaluate_messages
from fedpoison.strategies.discovery import client_ids
from fedpoison.strategies.fltrust_root import RootTrainer
from fedpoison.strategies.plan import Participation, RoundPlan
from fedpoison.strategies.record import RoundRecord, RoundTiming
from fedpoison.strategies.replies import collect_replies
from fedpoison.strategies.round import ReplyPolicy, ServerPipeline, aggregate_round
from fedpoison.strategies.sampling import NodeSampling
from fedpoison.training.flat import ModelLayout, flatten, stored, unflatten

EvaluateFn = Callable[[int, ArrayRecord], MetricRecord | None]
ChooseMalicious = Callable[[Sequence[int]], frozenset[int]]


class OnRound(Protocol):
    """Receives each finished round's record and the global model after it."""

    def __call__(self, record: RoundRecord, arrays: ArrayRecord) -> None: ...


class RobustStrategy(Strategy):
    """Flower's ``FedAvg`` loop with a robust aggregation rule in place of the mean.

    Each round samples ``max(int(N·fraction_train), min_train_nodes)`` of the ``N`` nodes from
    (seed, round), sends them the global model, turns the replies into the update matrix
    ``Δ_i = w_i − w_global`` (float32, ascending client id; docs/conventions.md §C1), runs the
    pre-aggregators and ``rule`` on it and steps ``w ← w + η·Agg(Δ)``. Works with a stock Flower
    ClientApp: replies carry ``arrays`` and ``metrics["num-examples"]``; nothing else is asked
    of the nodes. Unusable replies (errors, wrong shapes, non-finite weights, impossible
    counts) are rejected and recorded, not aggregated.

    Client ids: a node's partition id when the Grid knows it (fedpoison's engines) or when
    ``ask_partition_ids`` (one ``query`` message per node; the ClientApp must answer it);
    otherwise the rank of its node id among the sorted node ids. The population is the nodes
    connected when round 1 starts (waiting for ``min_available_nodes``).

    Args:
        rule: the aggregation rule, an :class:`~fedpoison.aggregators.base.Aggregator`
            (``Krum()``, ``TrimmedMean(beta=0.2)``, ``FLTrust()``, ...) or a registered name.
        pre: pre-aggregators run in order before the rule (``Bucketing(s=2)``, ``Clip(...)``,
            ...) or registered names.
        f: the Byzantine count the defense assumes; ``None`` = the known malicious pool
            scaled to the round (0 without one).
        fraction_train, fraction_evaluate, min_train_nodes, min_evaluate_nodes,
            min_available_nodes: as in Flower's ``FedAvg``; ``fraction_evaluate=0``
            disables federated evaluation.
        num_train_nodes: exactly this many clients per round (instead of ``fraction_train``).
        server_lr: η, the server learning rate.
        root: the server's own update for rules that need one (FLTrust): a
            :class:`~fedpoison.strategies.fltrust_root.RootTrainer` on the server's data.
        privacy: central differential privacy (clip and noise); none by default.
        replies: what to do with unusable replies and with rounds that cannot be aggregated.
        availability: simulated dropouts and stragglers (simulation only).
        known_malicious: client ids known to be malicious, used only to score detection
            (``tp``, ``fp``, ...) and count malicious participants — never shown to the rule.
            :class:`fedpoison.Adversary` sets them when it wraps this strategy.
        ask_partition_ids: map nodes to partition ids with a ``query`` message.
        recorder: called after every round with its :class:`RoundRecord` and the new model
            (e.g. :class:`fedpoison.RoundRecorder`).
        seed: the sampling, the rule's randomness and the DP noise derive from it.
        device: where the update matrix is aggregated (``"cpu"``, ``"cuda"``).
        model: the architecture and input shape, for rules that run the clients' models
            (``needs_model``: DeepSight), e.g. ``FlatModel(net, (1, 28, 28))``.

    Attributes:
        history: one :class:`RoundRecord` per round: participants, ``f``, rejected and
            invalid clients, per-client weights, detection counts, evaluations, timing.
        first_round: rounds before it were run by an earlier session (a resumed run).
        participation: who takes part, set when round 1 starts (the population is known).

    Raises:
        ValueError: an impossible configuration (fractions outside [0, 1], a rule that needs
            a server update without ``root``, pre-aggregators the rule cannot follow).

    Example:

        >>> from fedpoison import RobustStrategy
        >>> from fedpoison.aggregators import TrimmedMean
        >>> strategy = RobustStrategy(TrimmedMean(beta=0.2), fraction_train=0.5, seed=1)
        >>> strategy.defense.name
        'trimmed_mean'

        In a ServerApp's ``@app.main()``, ``start`` is Flower's::

            result = strategy.start(
                grid=grid, initial_arrays=ArrayRecord(model.state_dict()), num_rounds=3,
                evaluate_fn=central_evaluate,
            )
    """

    def __init__(
        self,
        rule: Aggregator | str,
        *,
        pre: Sequence[PreAggregator | str] = (),
        f: int | None = None,
        fraction_train: float = 1.0,
        fraction_evaluate: float = 1.0,
        min_train_nodes: int = 2,
        min_evaluate_nodes: int = 2,
        min_available_nodes: int = 2,
        num_train_nodes: int | None = None,
        server_lr: float = 1.0,
        root: RootTrainer | None = None,
        privacy: Privacy | None = None,
        replies: ReplyPolicy | None = None,
        availability: Availability | None = None,
        known_malicious: Iterable[int] = (),
        ask_partition_ids: bool = False,
        recorder: OnRound | None = None,
        seed: int = 0,
        device: str | torch.device = "cpu",
        model: FlatModel | None = None,
    ) -> None:
        self.sampling = NodeSampling(
            fraction_train,
            fraction_evaluate,
            min_train_nodes,
            min_evaluate_nodes,
            min_available_nodes,
            num_train_nodes,
        )
        self.server = ServerPipeline(
            _defense(rule, pre, root, model),
            float(server_lr),
            int(seed),
            privacy=Privacy() if privacy is None else privacy,
            root=root,
            replies=ReplyPolicy() if replies is None else replies,
            device=torch.device(device),
            model=model,
        )
        self.f = f
        self.availability = Availability() if availability is None else availability
        self.known_malicious = frozenset(int(c) for c in known_malicious)
        self.ask_partition_ids = ask_partition_ids
        self.recorder = recorder
        self.first_round = 1
        self.history: list[RoundRecord] = []
        self.participation: Participation | None = None
        self._choose: ChooseMalicious | None = None
        self._client_of_node: dict[int, int] = {}
        self._node_of_client: dict[int, int] = {}
        self._plan: RoundPlan | None = None
        self._kept: tuple[ArrayRecord, torch.Tensor] | None = None  # our last model, flat

    @property
    def defense(self) -> Defense:
        """The pre-aggregators and the rule."""
        return self.server.defense

    def attach(self, stage: AdversaryStage, choose_malicious: ChooseMalicious) -> None:
        """Let a simulated colluding adversary craft the malicious rows inside the round (used
        by :class:`fedpoison.Adversary`); ``choose_malicious(client ids)`` names them."""
        if self.participation is not None:
            raise RuntimeError("attach the adversary before the first round")
        self.server.adversary, self._choose = stage, choose_malicious

    def state_dict(self) -> dict[str, Any]:
        """The state that crosses rounds (the rule's and the privacy mechanism's)."""
        return self.server.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (to resume a run)."""
        self.server.load_state_dict(state)

    # -- Flower Strategy API ----------------------------------------------------------
    def summary(self) -> None:
        """Log the defense and the sampling, as Flower's strategies do."""
        log(INFO, "\t├──> RobustStrategy: defense %s, seed %d", self.defense.name, self.server.seed)
        log(INFO, "\t│\t└── %s", self.sampling)

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Plan the round and send the global model to the sampled clients that are up."""
        participation = self._population(grid)
        self._plan = self._new_plan(participation, server_round, arrays)
        # one payload shared by every message, as Flower's own strategies do
        content = RecordDict(
            {"arrays": arrays, "config": ConfigRecord({**config, SERVER_ROUND: server_round})}
        )
        group = str(server_round)
        return [
            instruction_message(content, self._node_of_client[cid], MessageType.TRAIN, group)
            for cid in self._plan.contacted
        ]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Validated replies → the new global model (``None`` when skipped) and metrics; the
        round's record is appended to :attr:`history`."""
        plan, participation = self._plan, self.participation
        assert plan is not None and plan.server_round == server_round, "configure_train first"
        assert participation is not None
        got = collect_replies(
            replies,
            self._client_of_node,
            set(plan.sampled),
            plan.layout,
            self.server.replies.partition_sizes,
        )
        outcome = aggregate_round(plan, got, participation, self.server)
        record = outcome.record
        self.history.append(record)
        metrics = _train_metrics(record, bool(participation.malicious))
        if outcome.new_global is None:
            return None, metrics
        arrays = unflatten(outcome.new_global, plan.layout)
        self._kept = (arrays, stored(outcome.new_global.cpu(), plan.layout))
        return arrays, metrics

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Send the global model to ``max(int(N·fraction_evaluate), min_evaluate_nodes)``
        clients drawn from (seed, round); none when ``fraction_evaluate`` is 0."""
        count = self.sampling.evaluate_count(self._population(grid).num_clients)
        return evaluate_messages(
            server_round, arrays, config, self._node_of_client, count, self.server.seed
        )

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """The ``num-examples``-weighted mean of the clients' metrics (unusable replies left
        out and counted); kept in the round's record as ``federated``."""
        metrics = aggregate_evaluations(replies)
        if metrics is not None and self.history and self.history[-1].round == server_round:
            self.history[-1].federated = dict(metrics)
        return metrics

    def start(
        self,
        grid: Grid,
        initial_arrays: ArrayRecord,
        num_rounds: int = 3,
        timeout: float = 3600,
        train_config: ConfigRecord | None = None,
        evaluate_config: ConfigRecord | None = None,
        evaluate_fn: EvaluateFn | None = None,
    ) -> Result:
        """Flower's ``Strategy.start``: ``evaluate_fn(0, initial_arrays)`` first, then rounds
        ``first_round..num_rounds`` of training, federated evaluation and
        ``evaluate_fn(round, arrays)``. Each round's record and new model go to the
        recorder; the ``Result`` holds the final model and every round's metrics."""
        train_config = ConfigRecord() if train_config is None else train_config
        evaluate_config = ConfigRecord() if evaluate_config is None else evaluate_config
        result = Result()
        if evaluate_fn is not None and self.first_round == 1:
            initial = evaluate_fn(0, initial_arrays)
            if initial is not None:
                result.evaluate_metrics_serverapp[0] = initial
        arrays = initial_arrays
        for server_round in range(self.first_round, num_rounds + 1):
            arrays = self._round_trip(
                grid, server_round, arrays, (train_config, evaluate_config), timeout, evaluate_fn
            )
            self._collect(result, self.history[-1])
        result.arrays = arrays
        return result

    # -- internals --------------------------------------------------------------------
    def _population(self, grid: Grid) -> Participation:
        """Who takes part, fixed the first time the grid is seen."""
        if self.participation is not None:
            return self.participation
        available = self.sampling.min_available_nodes
        self._client_of_node = client_ids(grid, available, self.ask_partition_ids)
        self._node_of_client = {cid: node for node, cid in self._client_of_node.items()}
        ids = sorted(self._node_of_client)
        per_round = self.sampling.train_count(len(ids))
        malicious = self.known_malicious if self._choose is None else self._choose(ids)
        unknown = sorted(malicious - set(ids))
        if unknown:
            raise ValueError(f"RobustStrategy: malicious client ids {unknown} are not clients")
        self.known_malicious = malicious
        participation = Participation(len(ids), per_round, malicious, self.f, self.availability)
        try:
            self.defense.check(per_round, participation.assumed_f(per_round))
        except ValueError as exc:
            raise ValueError(
                f"{exc} with {per_round} clients per round; sample more clients, make fewer "
                "malicious or set f="
            ) from None
        self.participation = participation
        return participation

    def _new_plan(
        self, participation: Participation, server_round: int, arrays: ArrayRecord
    ) -> RoundPlan:
        layout = ModelLayout.of(arrays)
        if self._kept is not None and self._kept[0] is arrays:
            global_flat = self._kept[1]  # the model this strategy made: no decoding
        else:
            global_flat = flatten(arrays, layout)
        return participation.plan(server_round, self.server.seed, arrays, global_flat, layout)

    def _round_trip(
        self,
        grid: Grid,
        server_round: int,
        arrays: ArrayRecord,
        configs: tuple[ConfigRecord, ConfigRecord],
        timeout: float,
        evaluate_fn: EvaluateFn | None,
    ) -> ArrayRecord:
        """Train, aggregate, evaluate and record one round; the global model after it."""
        t0 = time.perf_counter()
        messages = self.configure_train(server_round, arrays, configs[0], grid)
        replies = grid.send_and_receive(messages, timeout=timeout)
        t1 = time.perf_counter()
        new_arrays, _ = self.aggregate_train(server_round, replies)
        t2 = time.perf_counter()
        arrays = new_arrays if new_arrays is not None else arrays
        asked = list(self.configure_evaluate(server_round, arrays, configs[1], grid))
        if asked:
            self.aggregate_evaluate(server_round, grid.send_and_receive(asked, timeout=timeout))
        evaluation = evaluate_fn(server_round, arrays) if evaluate_fn is not None else None
        record = self.history[-1]
        record.evaluation = dict(evaluation) if evaluation is not None else {}
        record.spent = self.server.privacy.spent(server_round)
        record.timing = RoundTiming(t1 - t0, t2 - t1, time.perf_counter() - t2)
        if self.recorder is not None:
            self.recorder(record, arrays)
        return arrays

    def _collect(self, result: Result, record: RoundRecord) -> None:
        """Put the round's metrics where Flower's ``Result`` keeps them."""
        result.train_metrics_clientapp[record.round] = _train_metrics(
            record, bool(self.known_malicious)
        )
        if record.federated:
            result.evaluate_metrics_clientapp[record.round] = MetricRecord(dict(record.federated))
        if record.evaluation:
            result.evaluate_metrics_serverapp[record.round] = MetricRecord(dict(record.evaluation))


def _defense(
    rule: Aggregator | str,
    pre: Sequence[PreAggregator | str],
    root: RootTrainer | None,
    model: FlatModel | None,
) -> Defense:
    defense = Defense(_rule(rule), [_pre(p, i) for i, p in enumerate(pre)])
    if defense.rule.needs_server_update and root is None:
        raise ValueError(
            f"{defense.rule.name} needs the server's own update: pass root=RootTrainer(...)"
        )
    if defense.rule.needs_model and model is None:
        raise ValueError(
            f"{defense.rule.name} runs the clients' models: pass model=FlatModel(net, input_shape)"
        )
    return defense


def _rule(rule: Aggregator | str) -> Aggregator:
    if isinstance(rule, str):
        return AGGREGATORS.build(rule, "rule")
    if not isinstance(rule, Aggregator):
        raise TypeError(f"rule must be an Aggregator or a registered name, got {rule!r}")
    return rule


def _pre(pre: PreAggregator | str, index: int) -> PreAggregator:
    if isinstance(pre, str):
        return PRE_AGGREGATORS.build(pre, f"pre[{index}]")
    if not isinstance(pre, PreAggregator):
        raise TypeError(f"pre[{index}] must be a PreAggregator or a registered name, got {pre!r}")
    return pre


def _train_metrics(record: RoundRecord, scored: bool) -> MetricRecord:
    """The round's train metrics: participants, rejections (and detection when scored)."""
    metrics = MetricRecord({"participants": record.participants, "rejected": len(record.rejected)})
    if record.skipped is not None:
        metrics["skipped"] = 1
    if not math.isnan(record.train_loss):
        metrics["train-loss"] = record.train_loss
    if scored:
        metrics["malicious_participants"] = record.malicious_participants
        for key, value in record.detection.items():
            if not math.isnan(value):
                metrics[key] = value
    return metrics
