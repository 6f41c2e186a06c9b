"""What every logger gets: the run's identity, and the numbers and settings worth logging."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fedpoison.config import DISPLAY_KEYS

Scalar = int | float | str | bool


@dataclass(frozen=True)
class RunInfo:
    """One run, as loggers see it before round 1.

    Attributes:
        run_dir: the run directory (``results.json``, ``metrics.csv`` go there).
        config: the resolved config.
        choices: the option chosen in each config group (``defense: median``, ...), with
            ``partition`` the partitioner's real name.
        sweep_dir: the multirun directory when the run is a sweep job, else ``None``; loggers
            group a sweep's jobs by it.
    """

    run_dir: Path
    config: dict[str, Any]
    choices: dict[str, str]
    sweep_dir: Path | None = None

    @property
    def group(self) -> str | None:
        """A sweep's name for grouping its jobs: its directory's last two parts
        (``2026-12-01/15-31-00`` under ``multirun/``), ``None`` for a single run."""
        return None if self.sweep_dir is None else "/".join(self.sweep_dir.parts[-2:])


class Logger(Protocol):
    """An experiment logger (``_target_`` of a ``conf/logger`` config)."""

    def start(self, run: RunInfo) -> None:
        """Open the run: settings, names, groups. Called once, before round 1."""

    def log_round(self, row: dict[str, Any]) -> None:
        """One round's record (``results.json``'s row: ``round`` plus its metrics)."""

    def finish(self, results: dict[str, Any]) -> None:
        """The complete run: ``results.json``'s document (final metrics, provenance), with
        ``results.json`` and ``metrics.csv`` already written in the run directory."""

    def close(self) -> None:
        """Release the logger; always called, also after a failed run (then without
        :meth:`finish`)."""


def numeric(row: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a record (``round``, booleans, lists and NaN left out)."""
    return {
        f"{prefix}{key}": float(value)
        for key, value in row.items()
        if key != "round"
        and isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    }


def hyperparameters(run: RunInfo) -> dict[str, Scalar]:
    """The run's settings as flat ``{dotted key: scalar}``: the choices (``defense``,
    ``attack``, ...) and every leaf of the config except display-only keys; ``None`` and lists
    as their text."""
    flat: dict[str, Scalar] = dict(run.choices)

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        elif isinstance(node, (int, float, str, bool)):
            flat[prefix[:-1]] = node
        else:
            flat[prefix[:-1]] = str(node)

    for key, value in run.config.items():
        if key not in DISPLAY_KEYS:
            walk(value, f"{key}.")
    return flat
