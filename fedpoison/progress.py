"""A rich progress bar over rounds showing the latest accuracy."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class RoundProgress:
    """Context manager; ``update(row)`` advances one round."""

    def __init__(self, num_rounds: int, enabled: bool = True) -> None:
        self._progress = Progress(
            TextColumn("[bold]rounds"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            disable=not enabled,
            transient=False,
        )
        self._task = self._progress.add_task("", total=num_rounds)

    def __enter__(self) -> RoundProgress:
        self._progress.start()
        return self

    def update(self, row: dict[str, Any]) -> None:
        if "accuracy" not in row:  # a round without evaluation (eval_every > 1)
            self._progress.update(self._task, advance=1)
            return
        desc = f"acc {row['accuracy']:.3f}"
        if "asr" in row:
            desc += f"  asr {row['asr']:.3f}"
        self._progress.update(self._task, advance=1, description=desc)

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._progress.stop()
