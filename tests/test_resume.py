"""Kill test: SIGKILL after a checkpoint, re-run with resume=true, same metrics as uninterrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fedpoison.outputs import load_results

ARGS = [
    "attack=sign_flip",
    "defense=median",
    "num_rounds=12",
    "checkpoint_every=3",
    "progress=false",
]


def _cmd(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "fedpoison", *ARGS, f"hydra.run.dir={run_dir}", *extra]


def _metrics(path: Path) -> list[dict]:
    rows = json.loads((path / "results.json").read_text())["rounds"]
    return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows]


@pytest.mark.slow
def test_killed_run_resumes_bit_identical(tmp_path):
    whole = tmp_path / "whole"
    subprocess.run(_cmd(whole), check=True, capture_output=True, timeout=600)

    killed = tmp_path / "killed"
    proc = subprocess.Popen(_cmd(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (killed / "checkpoint.pt").exists():
        assert proc.poll() is None, "run finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    written = json.loads((killed / "results.json").read_text())  # never truncated
    partial = load_results(killed)  # with the journal's rounds, which are ahead of it
    assert written["status"] == partial["status"] == "running"
    assert 1 <= len(written["rounds"]) <= len(partial["rounds"])
    assert 3 <= len(partial["rounds"]) < 12
    assert [r["round"] for r in partial["rounds"]] == list(range(1, len(partial["rounds"]) + 1))

    resumed = subprocess.run(
        _cmd(killed, "resume=true"), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr
    done = json.loads((killed / "results.json").read_text())
    assert done["status"] == "complete" and done["provenance"]["resumed_after_round"] >= 3
    assert _metrics(killed) == _metrics(whole)

    again = subprocess.run(_cmd(killed, "resume=true"), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "already complete" in again.stdout
