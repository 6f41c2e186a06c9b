"""Federated evaluation: the global model sent to a seeded sample of clients, their metrics
averaged by ``num-examples`` (Flower's ``FedAvg`` semantics).

Replies that cannot be used (errors, no ``MetricRecord``, a missing or non-positive
``num-examples``, non-numeric values) are left out and counted, never averaged in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict
from flwr.serverapp.strategy.strategy_utils import aggregate_metricrecords

from fedpoison.protocol import NUM_EXAMPLES, SERVER_ROUND
from fedpoison.seeding import EVALUATION
from fedpoison.strategies.sampling import sample_clients


def evaluate_messages(
    server_round: int,
    arrays: ArrayRecord,
    config: ConfigRecord,
    node_of_client: Mapping[int, int],
    count: int,
    seed: int,
) -> list[Message]:
    """One ``evaluate`` message per client of the round's evaluation sample (``count``
    clients, drawn from (seed, round) on the :data:`~fedpoison.seeding.EVALUATION` stream)."""
    if count <= 0:
        return []
    chosen = sample_clients(list(node_of_client), count, seed, server_round, EVALUATION)
    content = RecordDict(
        {"arrays": arrays, "config": ConfigRecord({**config, SERVER_ROUND: server_round})}
    )
    return [
        Message(content, node_of_client[cid], "evaluate", group_id=str(server_round))
        for cid in chosen
    ]


def _usable(reply: Message) -> bool:
    if reply.has_error():
        return False
    metrics = list(reply.content.metric_records.values())
    if len(metrics) != 1:
        return False
    count = metrics[0].get(NUM_EXAMPLES)
    if isinstance(count, bool) or not isinstance(count, (int, float)) or not count > 0:
        return False
    return all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        for v in metrics[0].values()
    )


def aggregate_evaluations(replies: Iterable[Message]) -> MetricRecord | None:
    """The ``num-examples``-weighted mean of the usable replies' metrics, plus
    ``evaluated`` (how many replies were averaged) and ``unusable`` (how many were not);
    ``None`` when no reply came."""
    received = list(replies)
    if not received:
        return None
    usable = [r.content for r in received if _usable(r)]
    metrics = aggregate_metricrecords(usable, NUM_EXAMPLES) if usable else MetricRecord()
    metrics["evaluated"] = len(usable)
    metrics["unusable"] = len(received) - len(usable)
    return metrics
