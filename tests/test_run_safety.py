"""Nothing lost, nothing shared: run directories, locks, refusals, file modes, I/O faults."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fedpoison_testing import fedpoison

from fedpoison import rundir
from fedpoison.config import ConfigError
from fedpoison.files import atomic_write_text

FAST = ["progress=false", "num_rounds=2"]


def _error_line(out: subprocess.CompletedProcess[str]) -> str:
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    return lines[0]


# --------------------------------------------------------------------------- unique directories
def test_claim_gives_each_caller_its_own_directory(tmp_path: Path) -> None:
    first = rundir.claim.__wrapped__(str(tmp_path / "10-00-00"))
    second = rundir.claim.__wrapped__(str(tmp_path / "10-00-00"))
    assert (first, second) == (str(tmp_path / "10-00-00"), str(tmp_path / "10-00-00-2"))
    assert Path(first).is_dir() and Path(second).is_dir()


@pytest.mark.slow
def test_two_runs_started_together_keep_both_results(tmp_path: Path) -> None:
    """Two default runs started in the same second (the default run directory has one-second
    resolution): both complete, in two directories."""
    cmd = [sys.executable, "-m", "fedpoison", *FAST]
    procs = [
        subprocess.Popen(
            [*cmd, "seed=1"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
        subprocess.Popen(
            [*cmd, "seed=2", "defense=median"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ),
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    results = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("outputs/*/*/results.json"))]
    assert len(results) == 2
    assert {r["config"]["seed"] for r in results} == {1, 2}
    assert all(r["status"] == "complete" for r in results)


# --------------------------------------------------------------------------- lock
def test_lock_refuses_a_second_holder_and_is_released(tmp_path: Path) -> None:
    with rundir.RunLock(tmp_path):
        holder = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from pathlib import Path; from fedpoison.rundir import RunLock\n"
                "try:\n    RunLock(Path(sys.argv[1])).__enter__()\n"
                "except Exception as e:\n    print(e)",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert f"is in use by another fedpoison run (pid {os.getpid()})" in holder.stdout
    with rundir.RunLock(tmp_path):  # released: taken again
        pass


# --------------------------------------------------------------------------- refusals
def _snapshot(directory: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in directory.rglob("*")
        if p.is_file() and p.name != rundir.LOCK
    }


@pytest.mark.slow
def test_a_finished_run_is_never_overwritten(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert fedpoison(*FAST, f"hydra.run.dir={run}").returncode == 0
    before = _snapshot(run)
    refused = fedpoison(*FAST, "defense=median", f"hydra.run.dir={run}")
    assert refused.returncode == 2
    assert _error_line(refused) == (
        f"fedpoison: error: {run} already holds a complete run (2 rounds); "
        "resume=true continues it, overwrite=true replaces it, or choose another hydra.run.dir"
    )
    assert _snapshot(run) == before  # results, metrics, checkpoint, log and .hydra/ byte-identical
    replaced = fedpoison(*FAST, "defense=median", "overwrite=true", f"hydra.run.dir={run}")
    assert replaced.returncode == 0, replaced.stderr
    assert json.loads((run / "results.json").read_text())["choices"]["defense"] == "median"


def test_check_reuse_rules(tmp_path: Path) -> None:
    config = {"seed": 0, "num_rounds": 4, "defense": {"f": 1}}
    rundir.check_reuse(tmp_path, None, config, resume=False, overwrite=False)  # empty: fine
    done = {"status": "running", "config": {**config, "seed": 1}, "rounds": [{}]}
    atomic_write_text(tmp_path / "results.json", json.dumps(done))
    with pytest.raises(ConfigError, match=r"already holds a running run \(1 of 4 rounds\)"):
        rundir.check_reuse(tmp_path, done, config, resume=False, overwrite=False)
    with pytest.raises(ConfigError, match=r"with other settings \(seed\) and no checkpoint"):
        rundir.check_reuse(tmp_path, done, config, resume=True, overwrite=False)
    rundir.check_reuse(tmp_path, {**done, "config": config}, config, resume=True, overwrite=False)
    rundir.check_reuse(tmp_path, done, config, resume=False, overwrite=True)
    assert not (tmp_path / "results.json").exists()


# --------------------------------------------------------------------------- file modes
def test_outputs_get_the_umask_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "results.json", "{}")
        assert stat.S_IMODE((tmp_path / "results.json").stat().st_mode) == 0o644
        os.umask(0o077)
        atomic_write_text(tmp_path / "metrics.csv", "")
        assert stat.S_IMODE((tmp_path / "metrics.csv").stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# --------------------------------------------------------------------------- I/O faults
def test_a_failed_write_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(self: Path, *args: object, **kwargs: object) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    atomic_write_text(tmp_path / "results.json", "old")
    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OSError) as caught:
        atomic_write_text(tmp_path / "results.json", "new")
    assert caught.value.errno == errno.ENOSPC and caught.value.filename == str(
        tmp_path / "results.json"
    )
    monkeypatch.undo()
    assert (tmp_path / "results.json").read_text() == "old"  # the last complete file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


@pytest.mark.slow
def test_a_corrupt_checkpoint_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert fedpoison(*FAST, f"hydra.run.dir={run}").returncode == 0
    checkpoint = run / "checkpoint.pt"
    checkpoint.write_bytes(checkpoint.read_bytes()[:3000])
    out = fedpoison("progress=false", "num_rounds=4", "resume=true", f"hydra.run.dir={run}")
    assert out.returncode == 2
    assert _error_line(out) == (
        f"fedpoison: error: resume=true: {checkpoint} is unreadable "
        "(truncated or corrupt: PytorchStreamReader failed reading zip archive: "
        "failed finding central directory); "
        "remove it and run with overwrite=true to start again, or restore it from a copy"
    )


def _tmpfs(path: Path, options: str) -> None:
    path.mkdir()
    if (
        os.geteuid() != 0
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("needs root and mount to make a small tmpfs")


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_keeps_the_last_round(tmp_path: Path) -> None:
    disk = tmp_path / "disk"
    _tmpfs(disk, "size=40k")
    try:
        out = fedpoison("progress=false", "num_rounds=20", f"hydra.run.dir={disk / 'run'}")
        assert out.returncode == 4
        line = _error_line(out)
        assert line.startswith(f"fedpoison: error: cannot use {disk / 'run'}/") and line.endswith(
            ": No space left on device; free disk space, "
            "then resume=true continues from the last checkpoint (the rounds so far are intact)"
        )
        results = json.loads((disk / "run" / "results.json").read_text())
        rounds = [r["round"] for r in results["rounds"]]
        assert (
            results["status"] == "running" and rounds == list(range(1, len(rounds) + 1)) and rounds
        )
        metrics = (disk / "run" / "metrics.csv").read_text().splitlines()
        assert len(metrics) - 1 in (len(rounds), len(rounds) - 1)  # written just before or after
    finally:
        subprocess.run(["umount", str(disk)], check=False)


@pytest.mark.slow
def test_an_unwritable_output_directory_is_one_line(tmp_path: Path) -> None:
    disk = tmp_path / "ro"
    _tmpfs(disk, "ro,size=1m")
    try:
        out = fedpoison(*FAST, f"hydra.run.dir={disk / 'run'}")
        assert out.returncode == 4
        assert _error_line(out) == (
            f"fedpoison: error: cannot create the run directory {disk / 'run'}: "
            f"{disk} is not a writable directory; "
            "choose another hydra.run.dir or run from a writable directory"
        )
        here = fedpoison(*FAST, cwd=disk)
        assert here.returncode == 4 and "cannot create the run directory" in _error_line(here)
        printed = fedpoison("--cfg", "job", cwd=disk)  # writes nothing: not refused
        assert printed.returncode == 0 and "num_rounds: 20" in printed.stdout, printed.stderr
    finally:
        subprocess.run(["umount", str(disk)], check=False)


# --------------------------------------------------------------------------- what a run tells
@pytest.mark.slow
def test_log_progress_and_resume_are_told(tmp_path: Path) -> None:
    run = tmp_path / "run"
    first = fedpoison("progress=true", "num_rounds=5", f"hydra.run.dir={run}")
    assert first.returncode == 0, first.stderr
    assert "round 5/5 (100%)" in first.stdout and "eta 0:00:00" in first.stdout  # stdout is a pipe
    resumed = fedpoison("progress=true", "num_rounds=8", "resume=true", f"hydra.run.dir={run}")
    assert resumed.returncode == 0, resumed.stderr
    assert (
        "resumed from round 5 of 8" in resumed.stdout and "resumed after round 5" in resumed.stdout
    )
    assert not list(run.glob("*.log"))[1:] and not (run / "cli.log").exists()
    log = (run / "fedpoison.log").read_text()
    assert (
        log.count(" INFO start: ") == 2
        and "INFO resumed from round 5" in log
        and "8 rounds in" in log
    )


def test_alie_pays_its_scipy_import_when_built() -> None:
    """The z_max quantile needs SciPy (~0.3 s to import): built before round 1, not inside
    round 1's aggregation time."""
    code = (
        "import sys; from fedpoison.attacks.alie import ALIE; "
        "assert 'scipy.special' not in sys.modules; "
        "ALIE(); assert 'scipy.special' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
