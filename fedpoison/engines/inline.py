"""``engine=inline``: the ClientApp runs in this process, node by node (no Ray, no polling)."""

from __future__ import annotations

from flwr.app import Context, RecordDict
from flwr.serverapp import ServerApp

from fedpoison.clients.app import ClientSpec, make_client_app
from fedpoison.engines.base import Engine
from fedpoison.engines.grid import InlineGrid


def server_context(run_id: int = 1) -> Context:
    """The ServerApp's Context (node 0, empty configs)."""
    return Context(run_id=run_id, node_id=0, node_config={}, state=RecordDict(), run_config={})


class InlineEngine(Engine):
    """Laptops, CI and small models."""

    name = "inline"

    def execute(self, server_app: ServerApp, client_spec: ClientSpec, num_clients: int, verbose: bool) -> None:
        grid = InlineGrid(make_client_app(client_spec), num_clients)
        server_app(grid, server_context())
