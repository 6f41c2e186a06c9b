"""``engine=ray``: the Grid dispatches ClientApp calls to Ray actors (CPUs, GPUs, clusters).

Ray starts lazily and quietly on first use and stays up for the rest of the process (a
Hydra multirun reuses it); ``address`` joins an existing cluster (``auto`` = the one
``ray start --head`` launched on this machine).
"""

from __future__ import annotations

import atexit
import logging
import os
import tempfile
from typing import Any

from flwr.serverapp import ServerApp

from fedpoison.clients.app import ClientSpec
from fedpoison.engines.base import Engine
from fedpoison.engines.inline import server_context


def ensure_ray(address: str | None, num_cpus: float | None, verbose: bool) -> None:
    """Initialise Ray once per process (no dashboard, logs only when ``verbose``)."""
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_TMPDIR", os.path.join(tempfile.gettempdir(), "fedpoison-ray"))
    kwargs: dict[str, Any] = {
        "include_dashboard": False,
        "log_to_driver": verbose,
        "logging_level": logging.INFO if verbose else logging.ERROR,
        "configure_logging": verbose,
    }
    if address:
        kwargs["address"] = address
    else:
        kwargs["num_cpus"] = int(num_cpus) if num_cpus else None
        # Workers inherit the package through sys.path of this interpreter.
    ray.init(**kwargs)
    atexit.register(ray.shutdown)


class RayEngine(Engine):
    """Many cores, GPUs (fractional ``num_gpus_per_worker``), several machines."""

    name = "ray"

    def __init__(
        self,
        num_workers: int = 2,
        num_cpus_per_worker: float = 1.0,
        num_gpus_per_worker: float = 0.0,
        address: str | None = None,
        client_timeout: float | None = None,
    ) -> None:
        if num_workers < 1:
            raise ValueError(f"engine.num_workers must be ≥ 1, got {num_workers}")
        self.num_workers = num_workers
        self.num_cpus_per_worker = num_cpus_per_worker
        self.num_gpus_per_worker = num_gpus_per_worker
        self.address = address
        self.client_timeout = client_timeout

    def execute(
        self, server_app: ServerApp, client_spec: ClientSpec, num_clients: int, verbose: bool
    ) -> None:
        from fedpoison.engines.ray_grid import RayGrid

        ensure_ray(self.address, max(self.num_workers * self.num_cpus_per_worker, 1), verbose)
        grid = RayGrid(
            client_spec,
            num_clients,
            self.num_workers,
            self.num_cpus_per_worker,
            self.num_gpus_per_worker,
            self.client_timeout,
        )
        try:
            server_app(grid, server_context())
        finally:
            grid.close()

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "num_workers": self.num_workers,
            "num_cpus_per_worker": self.num_cpus_per_worker,
            "num_gpus_per_worker": self.num_gpus_per_worker,
            "address": self.address,
        }
