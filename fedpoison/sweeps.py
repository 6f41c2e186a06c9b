"""Failed sweep jobs, summarised by the process that launched the sweep, under any launcher.

Hydra's launchers run a sweep's jobs in this process (basic), in worker processes (joblib) or
in other processes and machines (submitit). A failed job is caught inside the job, so the
sweep goes on, and the launching process learns of it through a file:
:class:`FailedJobsCallback` (``hydra.callbacks.failed_jobs``) creates one in the sweep
directory when the sweep starts and exports its path as ``FEDPOISON_FAILED_JOBS`` (inherited
by the launcher's workers); :func:`record_failure` appends one JSON line per failed job;
:func:`report_failures` prints the summary and returns the worst exit code.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

ENV = "FEDPOISON_FAILED_JOBS"


class FailedJobsCallback(Callback):
    """Creates the sweep's failed-jobs file before the first job starts."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(str(config.hydra.sweep.dir)).resolve()
        sweep_dir.mkdir(parents=True, exist_ok=True)
        path = sweep_dir / f".fedpoison-failed-jobs-{os.getpid()}.jsonl"
        path.write_text("", encoding="utf-8")
        os.environ[ENV] = str(path)


def _failures_file(run_dir: Path) -> Path | None:
    """The sweep's failed-jobs file: from ``FEDPOISON_FAILED_JOBS``, or, for launchers whose
    workers do not inherit the launching process's environment (Ray's workers are started by
    its raylet), the one in the job directory's parent, the sweep directory."""
    path = os.environ.get(ENV)
    if path is not None:
        return Path(path)
    found = sorted(
        run_dir.parent.glob(".fedpoison-failed-jobs-*.jsonl"), key=lambda p: p.stat().st_mtime
    )
    return found[-1] if found else None


def record_failure(run_dir: Path, code: int, message: str) -> None:
    """Append one failed job to the sweep's file (a no-op outside a sweep). One ``write`` of
    one short line in append mode, so concurrent jobs do not interleave."""
    path = _failures_file(run_dir)
    if path is None:
        return
    line = json.dumps({"run_dir": str(run_dir), "code": code, "message": message}) + "\n"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(line)


def report_failures() -> int:
    """Print the failed jobs of the sweep this process launched; their worst exit code, or 0."""
    path = os.environ.pop(ENV, None)
    if path is None or not Path(path).exists():
        return 0
    failures = [
        json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line
    ]
    Path(path).unlink()
    if not failures:
        return 0
    print(f"fedpoison: {len(failures)} job(s) of the sweep failed:", file=sys.stderr)
    for job in failures:
        print(f"  {job['run_dir']}: {job['message']}", file=sys.stderr)
    return max(int(job["code"]) for job in failures)
