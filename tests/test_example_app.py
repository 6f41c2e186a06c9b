"""examples/flower-app runs as a Flower user runs it: through ``run_simulation`` and through
``flwr run`` on a local SuperLink (simulation runtime) that the test starts and stops.

Both runs are slow (a Ray start each, about a minute): marked ``slow`` and ``ray``.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp

from fedpoison.outputs import load_results

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: Flower depends on tomli
    import tomli as tomllib

APP_DIR = Path(__file__).resolve().parent.parent / "examples" / "flower-app"
FLWR = tomllib.loads((APP_DIR / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["flwr"]
RUN_CONFIG: dict[str, Any] = FLWR["app"]["config"]


def test_app_declares_its_components_and_config() -> None:
    flwr = FLWR
    assert flwr["app"]["components"] == {
        "serverapp": "flower_app.server_app:app",
        "clientapp": "flower_app.client_app:app",
    }
    assert {"rule", "attack", "num-malicious", "num-server-rounds"} <= set(RUN_CONFIG)


def _with_run_config(context: Context, **overrides: Any) -> Context:
    """The Context ``flwr run`` gives: the app's ``[tool.flwr.app.config]`` as run config."""
    return Context(
        run_id=context.run_id,
        node_id=context.node_id,
        node_config=context.node_config,
        state=context.state,
        run_config={**RUN_CONFIG, **overrides},
    )


def simulate_example(run_dir: str) -> None:
    """The example through ``run_simulation`` with its pyproject run config (run by the test in
    a fresh process, so that Flower starts a Ray whose workers can import ``flower_app``)."""
    from flwr.simulation import run_simulation

    server = importlib.import_module("flower_app.server_app").app
    client = importlib.import_module("flower_app.client_app").app
    server_app, client_app = ServerApp(), ClientApp()

    @server_app.main()
    def main(grid: Grid, context: Context) -> None:
        overrides = {"num-server-rounds": 2, "run-dir": run_dir, "min-available-nodes": 6}
        server(grid, _with_run_config(context, **overrides))

    @client_app.train()
    def train(msg: Message, context: Context) -> Message:
        return client(msg, _with_run_config(context))

    @client_app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        return client(msg, _with_run_config(context))

    run_simulation(
        server_app=server_app,
        client_app=client_app,
        num_supernodes=6,
        backend_config={
            "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
            "init_args": {"include_dashboard": False, "log_to_driver": False},
        },
    )


@pytest.mark.slow
@pytest.mark.ray
def test_through_run_simulation(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    here = Path(__file__).resolve().parent
    path = os.pathsep.join(p for p in (str(APP_DIR), str(here), os.environ.get("PYTHONPATH")) if p)
    child = "import sys, test_example_app; test_example_app.simulate_example(sys.argv[1])"
    done = subprocess.run(
        [sys.executable, "-c", child, str(run_dir)],
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "fedpoison example: final accuracy" in done.stdout
    assert "round 2: rejected" in done.stdout
    results = load_results(run_dir)  # what fedpoison-report reads
    assert results is not None and results["status"] == "complete"
    assert [row["round"] for row in results["rounds"]] == [1, 2]
    assert "accuracy" in results["rounds"][-1] and "federated_accuracy" in results["rounds"][-1]


@contextlib.contextmanager
def _superlinks_stopped(flwr_home: Path) -> Iterator[None]:
    """Stop the local SuperLink ``flwr run`` starts under ``flwr_home`` when done."""
    try:
        yield
    finally:  # only the SuperLink whose command line names this test's FLWR_HOME
        subprocess.run(["pkill", "-f", f"flower-superlink.*{flwr_home}"], check=False)


@pytest.mark.slow
@pytest.mark.ray
def test_through_flwr_run_offline(tmp_path: Path) -> None:
    """``flwr run .`` with Flower's runtime dependency installation off, as the app's README
    says: fedpoison is not on PyPI, the environment already has it."""
    flwr_home = tmp_path / "flwr-home"
    env = {
        **os.environ,
        "FLWR_HOME": str(flwr_home),
        "FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION": "1",
    }
    command = [
        "flwr",
        "run",
        ".",
        "--stream",
        "--federation-config",
        "num-supernodes=6",
        "--run-config",
        'num-server-rounds=2 min-available-nodes=6 rule="median" attack="none" '
        'client-attack="sign_flip"',
    ]
    with _superlinks_stopped(flwr_home):
        done = subprocess.run(
            command, cwd=APP_DIR, env=env, capture_output=True, text=True, timeout=400
        )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    assert "fedpoison example: final accuracy" in output, output[-3000:]
