"""``engine=flower``: Flower's own Simulation Engine (``flwr.simulation.run_simulation``).

The reference runtime, for parity checks. It polls its message queues (0.1 s), restarts Ray
on every call and, by default, reserves 2 CPUs per client; we set ``client_resources``.
"""

from __future__ import annotations

from typing import Any

import torch
from flwr.serverapp import ServerApp
from flwr.simulation import run_simulation

from fedpoison.clients.app import ClientSpec, make_client_app
from fedpoison.engines.base import Engine
from fedpoison.privacy.base import Privacy


class FlowerEngine(Engine):
    """Runs the same apps on Flower's Ray-backed Simulation Engine."""

    name = "flower"

    def __init__(
        self,
        num_cpus_per_client: float = 1.0,
        num_gpus_per_client: float = 0.0,
        address: str | None = None,
    ) -> None:
        self.num_cpus_per_client = num_cpus_per_client
        self.num_gpus_per_client = num_gpus_per_client
        self.address = address

    def check(
        self, model: torch.nn.Module, privacy: Privacy, *, checkpointed_state: bool = False
    ) -> None:
        """Refuse checkpointed client state: Flower's Simulation Engine keeps each node's
        ``Context`` (so worker momentum runs exactly) but out of the ServerApp's reach, so a
        checkpoint could not hold it nor a resume restore it."""
        if checkpointed_state:
            raise ValueError(
                "engine=flower cannot checkpoint the clients' state (training.worker_momentum): "
                "set checkpoint_every=0, or use engine=inline, ray or vectorized"
            )

    def execute(
        self, server_app: ServerApp, client_spec: ClientSpec, num_clients: int, verbose: bool
    ) -> None:
        init_args: dict[str, Any] = {"include_dashboard": False, "log_to_driver": verbose}
        if self.address:
            init_args["address"] = self.address
        backend_config: dict[str, Any] = {
            "client_resources": {
                "num_cpus": self.num_cpus_per_client,
                "num_gpus": self.num_gpus_per_client,
            },
            "init_args": init_args,
        }
        run_simulation(
            server_app=server_app,
            client_app=make_client_app(client_spec),
            num_supernodes=num_clients,
            backend_config=backend_config,
            verbose_logging=verbose,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "num_cpus_per_client": self.num_cpus_per_client,
            "num_gpus_per_client": self.num_gpus_per_client,
            "address": self.address,
        }
