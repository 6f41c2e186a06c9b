"""TensorBoard: scalars per round, and the run's settings and final metrics as HParams."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedpoison.loggers.base import RunInfo, hyperparameters, numeric

HPARAMS_RUN = "hparams"
"""Subdirectory of ``log_dir`` holding the HParams session (TensorBoard's HParams tab)."""


class TensorBoardLogger:
    """Scalars per round through ``torch.utils.tensorboard`` (needs the ``tensorboard``
    package); with ``hparams``, the settings (:func:`hyperparameters`) and the final metrics
    (``final/accuracy``, ...) as one HParams session, so that ``tensorboard --logdir SWEEP_DIR``
    compares a sweep's jobs in the HParams tab.

    Args:
        log_dir: where the event files go.
        hparams: write the HParams session at the end of a complete run.
    """

    def __init__(self, log_dir: str | Path, hparams: bool = True) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ValueError(
                "logger=tensorboard needs TensorBoard: pip install tensorboard"
            ) from exc
        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.hparams = hparams
        self._run: RunInfo | None = None

    def start(self, run: RunInfo) -> None:
        self._run = run

    def log_round(self, row: dict[str, Any]) -> None:
        step = int(row["round"])
        for key, value in numeric(row).items():
            self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def finish(self, results: dict[str, Any]) -> None:
        if self.hparams and self._run is not None:
            metrics = numeric(results.get("final") or {}, prefix="final/")
            self.writer.add_hparams(hyperparameters(self._run), metrics, run_name=HPARAMS_RUN)

    def close(self) -> None:
        self.writer.close()
