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


def _table(stdout: str) -> list[list[str]]:
    """The markdown table rows of a script's output, cells stripped (header rows dropped)."""
    rows = [line.strip("|").split("|") for line in stdout.splitlines() if line.startswith("| ")]
    return [[cell.strip() for cell in row] for row in rows[1:]]


def test_aggregators_script_agrees_with_its_peers_on_a_tiny_size() -> None:
    """Every fedpoison row is timed; every peer row whose definition coincides (ByzFL's too,
    when it is importable) agrees to float32 round-off."""
    rules = "krum,multi_krum,median,meamed,monna,mda,caf,cge,nnm,bucketing,clip,arc"
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "aggregators.py"), "--sizes", "10x1000"]
        + ["--repeats", "1", "--rules", rules],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])},
    )
    assert out.returncode == 0, out.stderr
    rows = _table(out.stdout)
    timed = {row[0] for row in rows if row[1] == "fedpoison" and row[4]}
    assert timed == set(rules.split(","))
    compared = [row for row in rows if row[1] != "fedpoison" and row[6]]
    assert compared, out.stdout
    for row in compared:
        if not row[6].startswith("("):
            assert float(row[6]) < 1e-5, row
    if "byzfl yes" in out.stdout:
        byzfl = {row[0] for row in compared if row[1].startswith("byzfl")}
        assert byzfl == set(rules.split(",")) - {"cge"}  # ByzFL has no CGE


def test_peers_end_to_end_script_prints_its_pairs() -> None:
    """Two tiny pairs (ByzFL's side only where it is importable): the table, the accuracies
    and the per-phase breakdown."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "peers_end_to_end.py")]
        + ["--rounds", "2", "--repeats", "2"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])},
    )
    assert out.returncode == 0, out.stderr
    rows = _table(out.stdout)
    assert [row[0] for row in rows] == ["1", "2"]
    for row in rows:
        assert float(row[1]) > 0 and 0.0 <= float(row[6]) <= 1.0
        if "byzfl yes" in out.stdout:
            assert float(row[2]) > 0 and 0.0 <= float(row[7]) <= 1.0
    assert "- fedpoison: train " in out.stdout
