"""Where a result came from: versions, machine, seed, engine, git commit."""

from __future__ import annotations

import functools
import os
import platform
import resource
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.cache
def git_state() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the checkout this process's code came from, read once per
    process: the jobs of a long sweep keep reporting the code they run even if the checkout
    moves on meanwhile. ``dirty``: tracked files differ from the commit."""
    commit = _git("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = _git("status", "--porcelain", "--untracked-files=no")
    return commit, None if status is None else bool(status)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def collect(seed: int | None, engine: dict[str, Any]) -> dict[str, Any]:
    """Provenance at the start of a run (``wall_s`` and peak memory are added at the end)."""
    return {
        "fedpoison": _version("fedpoison"),
        "flwr": _version("flwr"),
        "torch": _version("torch"),
        "numpy": _version("numpy"),
        "ray": _version("ray"),
        "hydra": _version("hydra-core"),
        "python": sys.version.split()[0],
        "git_commit": git_state()[0],
        "git_dirty": git_state()[1],
        **engine,
        "seed": seed,
        "hostname": socket.gethostname(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "gpu": _gpu_name(),
        "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
