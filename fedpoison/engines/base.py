"""What an engine is: something that runs one ServerApp against ``num_clients`` ClientApps."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

from flwr.serverapp import ServerApp

from fedpoison.clients.app import ClientSpec


class Engine(ABC):
    """Executes a simulation; selected with ``engine=inline|ray|flower`` (``_target_``)."""

    name: str

    @abstractmethod
    def execute(
        self, server_app: ServerApp, client_spec: ClientSpec, num_clients: int, verbose: bool
    ) -> None:
        """Run ``server_app`` to completion; results leave through the server app."""

    def describe(self) -> dict[str, Any]:
        """Engine facts for provenance (name, workers, resources)."""
        return {"engine": self.name}
