"""Weights & Biases (``logger=wandb``; ``pip install 'fedpoison[wandb]'``), offline by default.

One W&B run per fedpoison run: the resolved config and the choices as its config, every
round's metrics at ``step=round``, the final metrics in its summary (``final/accuracy``, ...)
and the provenance (versions, seed, engine, hardware) added to its config at the end. A sweep's
jobs share a ``group`` (the sweep directory). ``mode=offline`` writes ``<dir>/wandb/
offline-run-*`` and never contacts a server; ``wandb sync`` uploads it later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedpoison.extras import require
from fedpoison.loggers.base import RunInfo, numeric


class WandbLogger:
    """Args:
    project, entity: where the run belongs (``entity=None``: the default entity).
    mode: ``offline`` (default: files only), ``online`` or ``disabled``.
    dir: the directory ``wandb/`` is written under; ``None`` = the run directory.
    group: the run's group; ``None`` = the sweep directory for sweep jobs, none otherwise.
    tags: the run's tags.
    """

    def __init__(
        self,
        project: str = "fedpoison",
        entity: str | None = None,
        mode: str = "offline",
        dir: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
    ) -> None:
        self._wandb = require("wandb", "wandb", "logger=wandb")
        self.project, self.entity, self.mode = project, entity, mode
        self.dir, self.group, self.tags = dir, group, list(tags or [])
        self._run: Any = None

    def start(self, run: RunInfo) -> None:
        settings = self._wandb.Settings(silent=True, console="off")
        directory = Path(self.dir) if self.dir else run.run_dir
        directory.mkdir(parents=True, exist_ok=True)  # wandb needs it to exist
        self._run = self._wandb.init(
            project=self.project,
            entity=self.entity,
            mode=self.mode,
            dir=str(directory),
            name=run.run_dir.name,
            group=self.group or run.group,
            tags=self.tags,
            config={**run.config, "choices": run.choices},
            reinit="finish_previous",
            settings=settings,
        )

    def log_round(self, row: dict[str, Any]) -> None:
        self._run.log(numeric(row), step=int(row["round"]))

    def finish(self, results: dict[str, Any]) -> None:
        self._run.summary.update(numeric(results.get("final") or {}, prefix="final/"))
        self._run.config.update({"provenance": results["provenance"]}, allow_val_change=True)
        self._run.finish()
        self._run = None

    def close(self) -> None:
        if self._run is not None:  # the run failed before finish
            self._run.finish(exit_code=1)
            self._run = None
