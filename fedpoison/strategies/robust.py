"""RobustStrategy: the Flower ``Strategy`` adapter for every rule and attack; it only orchestrates.

One round: :meth:`Participation.plan` samples (seeded by round) → ``configure_train`` sends the
global model → replies are validated and ordered by client id (:func:`collect_replies`) →
:func:`aggregate_round` (reply policy, adversary, central DP, FLTrust server step, defense,
step) → evaluation → the :class:`RoundRecord` goes to the recorder with the new model.

Faulty replies follow :class:`ReplyPolicy`; a round left with too few rows for the defense's
bound raises :class:`RoundError`, or is skipped with the reason recorded — never silently.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Protocol

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Result, Strategy

from fedpoison.protocol import SERVER_ROUND
from fedpoison.strategies.discovery import node_partitions
from fedpoison.strategies.plan import Participation, RoundPlan
from fedpoison.strategies.record import RoundRecord, RoundTiming
from fedpoison.strategies.replies import collect_replies
from fedpoison.strategies.round import ServerPipeline, aggregate_round
from fedpoison.training.flat import ModelLayout, flatten, stored, unflatten
from fedpoison.training.local import LocalTraining

EvaluateFn = Callable[[int, ArrayRecord], MetricRecord | None]


class RoundRecorder(Protocol):
    """Receives each finished round's record and the global model after it."""

    def __call__(self, record: RoundRecord, arrays: ArrayRecord) -> None: ...


class RobustStrategy(Strategy):
    """Samples, attacks (as the simulated adversary), defends and records each round.

    Args:
        participation: who is sampled, who is malicious, how ``f`` follows.
        server: the server's part of a round and its checkpointable state.
        procedure: the clients' local training, sent with every round's model.
        recorder: called after every round with its record and the new global model.
    """

    def __init__(
        self,
        *,
        participation: Participation,
        server: ServerPipeline,
        procedure: LocalTraining,
        recorder: RoundRecorder | None = None,
    ) -> None:
        self.participation = participation
        self.server = server
        self.procedure = procedure
        self.recorder = recorder
        self.first_round = 1
        """Rounds before it were run by an earlier session (a resumed run)."""
        self.history: list[RoundRecord] = []
        self._client_of_node: dict[int, int] = {}
        self._node_of_client: dict[int, int] = {}
        self._plan: RoundPlan | None = None
        self._kept: tuple[ArrayRecord, torch.Tensor] | None = None  # our last model, flat

    # -- Flower Strategy API ----------------------------------------------------------
    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """Plan the round and send the global model to the sampled clients that are up."""
        self._plan = self._new_plan(server_round, arrays)
        # one payload shared by every message, as Flower's own strategies do
        content = RecordDict(
            {"arrays": arrays, "config": ConfigRecord({**config, SERVER_ROUND: server_round})}
        )
        return [
            Message(content, self._node_of_client[cid], "train", group_id=str(server_round))
            for cid in self._plan.contacted
        ]

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Validated replies → the new global model (``None`` when skipped) and metrics; the
        round's record is appended to :attr:`history` (``start`` completes it)."""
        plan = self._plan
        assert plan is not None and plan.server_round == server_round, "configure_train first"
        got = collect_replies(
            replies,
            self._client_of_node,
            set(plan.sampled),
            plan.layout,
            self.server.replies.partition_sizes,
        )
        outcome = aggregate_round(plan, got, self.participation, self.server)
        record = outcome.record
        self.history.append(record)
        if outcome.new_global is None:
            return None, MetricRecord({"participants": record.participants, "skipped": 1})
        arrays = unflatten(outcome.new_global, plan.layout)
        self._kept = (arrays, stored(outcome.new_global.cpu(), plan.layout))
        rejected = len(record.rejected)
        return arrays, MetricRecord({"participants": record.participants, "rejected": rejected})

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        """No federated evaluation: the global model is evaluated on the server."""
        return []

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        """Nothing to aggregate (see :meth:`configure_evaluate`)."""
        return None

    def summary(self) -> None:
        """Flower calls this at start; fedpoison's summary is printed by the CLI."""

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
        """Run rounds ``first_round..num_rounds`` from ``initial_arrays``.

        ``train_config`` defaults to :attr:`procedure`'s; ``evaluate_fn(round, arrays)`` runs
        after every round (``None`` = not evaluated this round). Each round's record and new
        model go to the recorder; a ``Result`` with the final model comes back.
        """
        self._client_of_node = node_partitions(grid, self.participation.num_clients)
        self._node_of_client = {cid: node for node, cid in self._client_of_node.items()}
        config = ConfigRecord(self.procedure.to_config()) if train_config is None else train_config
        result = Result()
        arrays = initial_arrays
        for server_round in range(self.first_round, num_rounds + 1):
            arrays = self._round_trip(grid, server_round, arrays, config, timeout, evaluate_fn)
            if self.history[-1].evaluation:
                metrics = MetricRecord(dict(self.history[-1].evaluation))
                result.evaluate_metrics_serverapp[server_round] = metrics
        result.arrays = arrays
        return result

    # -- internals --------------------------------------------------------------------
    def _new_plan(self, server_round: int, arrays: ArrayRecord) -> RoundPlan:
        layout = ModelLayout.of(arrays)
        if self._kept is not None and self._kept[0] is arrays:
            global_flat = self._kept[1]  # the model this strategy made: no decoding
        else:
            global_flat = flatten(arrays, layout)
        return self.participation.plan(server_round, self.server.seed, arrays, global_flat, layout)

    def _round_trip(
        self,
        grid: Grid,
        server_round: int,
        arrays: ArrayRecord,
        config: ConfigRecord,
        timeout: float,
        evaluate_fn: EvaluateFn | None,
    ) -> ArrayRecord:
        """Train, aggregate, evaluate and record one round; the global model after it."""
        t0 = time.perf_counter()
        messages = self.configure_train(server_round, arrays, config, grid)
        replies = grid.send_and_receive(messages, timeout=timeout)
        t1 = time.perf_counter()
        new_arrays, _ = self.aggregate_train(server_round, replies)
        t2 = time.perf_counter()
        arrays = new_arrays if new_arrays is not None else arrays
        evaluation = evaluate_fn(server_round, arrays) if evaluate_fn is not None else None
        record = self.history[-1]
        record.evaluation = dict(evaluation) if evaluation is not None else {}
        record.spent = self.server.privacy.spent(server_round)
        record.timing = RoundTiming(t1 - t0, t2 - t1, time.perf_counter() - t2)
        if self.recorder is not None:
            self.recorder(record, arrays)
        return arrays
