"""``engine=inline``: the ClientApp runs in this process, node by node (no Ray, no polling)."""

from __future__ import annotations

from typing import Any

import torch
from flwr.app import Context, RecordDict
from flwr.serverapp import ServerApp

from fedpoison.clients.app import ClientSpec, make_client_app
from fedpoison.engines.base import Engine
from fedpoison.engines.grid import InlineGrid


def server_context(run_id: int = 1) -> Context:
    """The ServerApp's Context (node 0, empty configs)."""
    return Context(run_id=run_id, node_id=0, node_config={}, state=RecordDict(), run_config={})


class InlineEngine(Engine):
    """Laptops, CI and small models.

    ``num_threads`` sets torch's intra-op threads for the run (``None`` = torch's default).
    The default 1 is deliberate: small per-client batches gain nothing from more threads, and
    OpenMP workers spinning on a busy machine made a 100-client digits round 4× slower with 2
    threads than with 1 (measured here; see benchmarks/engine_overhead.py).
    """

    name = "inline"

    def __init__(self, num_threads: int | None = 1) -> None:
        if num_threads is not None and num_threads < 1:
            raise ValueError(f"engine.num_threads must be ≥ 1 or null, got {num_threads}")
        self.num_threads = num_threads

    def execute(
        self, server_app: ServerApp, client_spec: ClientSpec, num_clients: int, verbose: bool
    ) -> None:
        previous = torch.get_num_threads()
        if self.num_threads is not None:
            torch.set_num_threads(self.num_threads)
        try:
            server_app(self.grid(client_spec, num_clients), server_context())
        finally:
            torch.set_num_threads(previous)

    def grid(self, client_spec: ClientSpec, num_clients: int) -> InlineGrid:
        """The in-process Grid the ServerApp runs on (built inside the torch-threads scope)."""
        return InlineGrid(make_client_app(client_spec), num_clients)

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "num_threads": self.num_threads}
