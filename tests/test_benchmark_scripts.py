"""The prepared GPU script runs its aggregator pass on the CPU (so it is not broken when a GPU
comes); the round-writes script prints its tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_script_dry_run_times_every_rule() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu.py"), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    from fedpoison.aggregators import AGGREGATORS

    for name in AGGREGATORS.names():
        assert f"| {name} |" in out.stdout


def test_round_writes_script_compares_old_and_new_recorders() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "round_writes.py"), "--rounds", "12"]
        + ["--repeats", "1"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert out.returncode == 0, out.stderr
    for line in (
        "| start-up ",
        "| write_s ",
        "| old      |",
        "| new      |",
        "writing the whole run",
    ):
        assert line in out.stdout
