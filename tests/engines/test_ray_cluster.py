"""Joining an existing Ray cluster: a local head started with `ray start --head` (loopback only)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.ray
def test_simulation_joins_a_running_head_node(tmp_path):
    port = _free_port()
    ray_tmp = tempfile.mkdtemp(
        prefix="fpray", dir="/tmp"
    )  # short: Ray's socket paths have a length limit
    head = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ray.scripts.scripts",
            "start",
            "--head",
            "--block",
            "--num-cpus",
            "2",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--include-dashboard",
            "false",
            "--disable-usage-stats",
            "--temp-dir",
            ray_tmp,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while (
            subprocess.run(
                [sys.executable, "-m", "ray.scripts.scripts", "status", "--address", address],
                capture_output=True,
            ).returncode
            != 0
        ):
            assert head.poll() is None, "ray head exited"
            assert time.monotonic() < deadline, "ray head did not come up"
            time.sleep(1)
        run_dir = tmp_path / "run"
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "fedpoison",
                "engine=ray",
                f"engine.address={address}",
                "engine.num_workers=2",
                "num_rounds=2",
                "federation.num_clients=6",
                "threat.num_malicious=1",
                "progress=false",
                f"hydra.run.dir={run_dir}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert out.returncode == 0, out.stderr
        results = json.loads((run_dir / "results.json").read_text())
        assert results["status"] == "complete"
        assert results["provenance"]["address"] == address
    finally:
        head.terminate()
        head.wait(timeout=60)
        shutil.rmtree(ray_tmp, ignore_errors=True)
