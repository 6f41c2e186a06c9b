"""Optional experiment loggers (``logger=tensorboard``); off by default.

A logger receives every round's record (the same dict that goes to ``results.json``) and
writes its numeric fields as scalars; lists (rejected ids, invalid replies) are skipped.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


class TensorBoardLogger:
    """Scalars per round through ``torch.utils.tensorboard`` (needs the ``tensorboard`` package)."""

    def __init__(self, log_dir: str | Path) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "logger=tensorboard needs TensorBoard: pip install tensorboard"
            ) from exc
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def log_round(self, row: dict[str, Any]) -> None:
        step = int(row["round"])
        for key, value in row.items():
            if key != "round" and isinstance(value, (int, float)) and not isinstance(value, bool):
                if math.isfinite(value):
                    self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
