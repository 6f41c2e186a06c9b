"""What an engine is: something that runs one ServerApp against ``num_clients`` ClientApps."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from flwr.serverapp import ServerApp

from fedpoison.clients.app import ClientSpec
from fedpoison.privacy.base import Privacy


class Engine(ABC):
    """Executes a simulation; selected with ``engine=inline|ray|flower`` (``_target_``)."""

    name: str

    @abstractmethod
    def execute(
        self, server_app: ServerApp, client_spec: ClientSpec, num_clients: int, verbose: bool
    ) -> None:
        """Run one simulation: ``server_app`` against ``num_clients`` ClientApps.

        Called once per run by ``fedpoison.execute.execute``; everything the run records leaves
        through callbacks of ``server_app`` (the strategy writes rounds, checkpoints and
        results), so nothing is returned. The engine decides only *where* ClientApps run;
        replies must not depend on it (same seed ⇒ same result on every engine and worker
        count).

        Args:
            server_app: the run's ``flwr.serverapp.ServerApp``; call it exactly once with a
                ``Grid`` whose nodes ``1..num_clients`` host partitions ``0..num_clients−1``
                (``node_config["partition-id"]``, ``node_config["num-partitions"]``), or hand
                it to a runtime that does (Flower's Simulation Engine).
            client_spec: the picklable description each worker builds the ClientApp from
                (:func:`~fedpoison.clients.app.make_client_app`); not modified.
            num_clients: the population, one node per client.
            verbose: show Flower's and Ray's logs.

        Raises:
            Exception: whatever ``server_app`` raises (e.g. ``RoundError`` when a round
                cannot be aggregated) propagates, after the engine has released its workers
                and restored the process state it changed (torch threads); Flower's
                Simulation Engine re-raises it from its ServerApp thread. A failing ClientApp
                call is not an exception here: it becomes an error reply that the strategy
                records.
        """

    def check(  # noqa: B027
        self, model: torch.nn.Module, privacy: Privacy, *, checkpointed_state: bool = False
    ) -> None:
        """Raise ``ValueError`` before round 1 when this engine cannot run ``model`` (a fresh
        one) under ``privacy`` exactly, or, with ``checkpointed_state``, cannot hand the
        clients' context state (worker momentum) to checkpoints and back; ``vectorized``
        refuses some models and privacy mechanisms, ``flower`` checkpointed client state."""

    def describe(self) -> dict[str, Any]:
        """Engine facts for provenance (name, workers, resources)."""
        return {"engine": self.name}
