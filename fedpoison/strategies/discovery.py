"""Map a Grid's node ids to client ids.

A client id is the node's partition id where it can be known: fedpoison's own Grids know the
mapping and expose it as ``partition_ids()``; on Flower's Grid (random node ids, the partition
id in each node's ``node_config``) one ``query`` message per node asks the ClientApp, which
must answer it (fedpoison's does). Otherwise — a stock Flower ClientApp — a node's client id
is the rank of its node id among the sorted node ids.
"""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable

from flwr.app import Message, MetricRecord, RecordDict
from flwr.serverapp import Grid

from fedpoison.protocol import PARTITION_ID
from fedpoison.records import record_of


@runtime_checkable
class KnowsPartitions(Protocol):
    """A Grid that can tell each node's partition id without asking the nodes."""

    def partition_ids(self) -> dict[int, int]:
        """``{node id: partition id}``."""
        ...


def wait_for_nodes(grid: Grid, expected: int, timeout: float = 120.0) -> list[int]:
    """Node ids once ``expected`` nodes are connected (Flower registers them asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = list(grid.get_node_ids())
        if len(nodes) >= expected:
            return nodes
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"only {len(nodes)} of {expected} nodes connected after {timeout:.0f} s"
            )
        time.sleep(0.05)


def client_ids(grid: Grid, min_nodes: int, ask_partition_ids: bool = False) -> dict[int, int]:
    """``{node id: client id}`` for every node of ``grid`` once ``min_nodes`` are connected:
    partition ids when the Grid knows them or ``ask_partition_ids`` (see
    :func:`node_partitions`), else ranks of the sorted node ids."""
    if isinstance(grid, KnowsPartitions) or ask_partition_ids:
        return node_partitions(grid, min_nodes)
    nodes = sorted(wait_for_nodes(grid, min_nodes))
    return {node: rank for rank, node in enumerate(nodes)}


def node_partitions(grid: Grid, expected: int) -> dict[int, int]:
    """``{node id: partition id}`` for every node of ``grid``; raises ``RuntimeError`` unless
    the partitions are exactly ``0..expected-1``."""
    if isinstance(grid, KnowsPartitions):
        return grid.partition_ids()
    nodes = wait_for_nodes(grid, expected)
    queries = [Message(RecordDict(), node, "query", group_id="discovery") for node in nodes]
    replies = list(grid.send_and_receive(queries))
    mapping: dict[int, int] = {}
    for reply in replies:
        if reply.has_error():
            raise RuntimeError(
                f"node {reply.metadata.src_node_id} failed discovery: {reply.error.reason}"
            )
        pid = record_of(reply.content, "metrics", MetricRecord)[PARTITION_ID]
        mapping[reply.metadata.src_node_id] = int(pid)  # type: ignore[arg-type]
    if len(mapping) != expected or sorted(mapping.values()) != list(range(expected)):
        raise RuntimeError(
            f"discovery found partitions {sorted(mapping.values())[:10]}…, "
            f"expected 0..{expected - 1}"
        )
    return mapping
