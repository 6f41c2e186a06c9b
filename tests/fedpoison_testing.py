"""Test helpers: compose fedpoison's config in-process and run tiny simulations."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir

from fedpoison.logs import quiet_environment

quiet_environment()
os.environ.setdefault("FEDPOISON_CACHE", str(Path(__file__).resolve().parent.parent / ".cache"))

CONF_DIR = str(Path(__file__).resolve().parent.parent / "fedpoison" / "conf")
TINY = [
    "federation.num_clients=6",
    "num_rounds=2",
    "threat.num_malicious=0",
    "attack=none",
    "defense=fedavg",
    "progress=false",
]


def compose_config(overrides: list[str]) -> Any:
    """fedpoison's config composed with ``overrides`` (no Hydra run directory)."""
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        return compose(config_name="config", overrides=overrides)


def run_simulation(overrides: list[str], run_dir: Path) -> dict[str, Any]:
    """prepare + execute a simulation in-process; returns ``results``."""
    from fedpoison.execute import execute
    from fedpoison.run import prepare

    return execute(prepare(compose_config(overrides)), run_dir)


def round_context(x: Any, f: int, seed: int = 0, **overrides: Any) -> Any:
    """A full ``RoundContext`` for an ``(n, d)`` matrix ``x`` (unit counts, ids 0..n−1, the mean
    as FLTrust's server update, a zero global model, a linear classifier with ``d`` parameters
    as the model); ``overrides`` replace fields."""
    import dataclasses

    import torch

    from fedpoison.aggregators.base import RoundContext
    from fedpoison.aggregators.flat_model import linear_model

    n, d = x.shape
    base = RoundContext(
        f=f,
        client_ids=tuple(range(n)),
        num_examples=torch.ones(n),
        generator=torch.Generator().manual_seed(seed),
        server_update=x.mean(dim=0),
        global_weights=torch.zeros(d, dtype=x.dtype),
        model=linear_model(d),
    )
    return dataclasses.replace(base, **overrides)


def fedpoison(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The ``fedpoison`` command as a user runs it (a fresh process), output captured."""
    return subprocess.run(
        [sys.executable, "-m", "fedpoison", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )
