"""The prepared GPU script runs its aggregator pass on the CPU (so it is not broken when a GPU
comes)."""

from __future__ import annotations

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
