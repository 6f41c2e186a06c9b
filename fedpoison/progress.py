"""Progress over rounds: a rich bar on terminals, plain periodic lines elsewhere (logs, pipes)."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

_UNKNOWN = "-:--:--"


def _hms(seconds: float) -> str:
    """``seconds`` as ``H:MM:SS``."""
    return str(timedelta(seconds=int(seconds)))


class RoundProgress:
    """Context manager; ``update(row)`` advances one round.

    On a terminal ``stream`` it draws a rich bar with the elapsed and remaining time. Elsewhere it
    prints one flushed line every ``every_rounds`` rounds (default: a tenth of ``num_rounds``) or
    ``every_seconds`` seconds, whichever comes first, and always after the last round.
    ``start_round`` is the first round this process runs: after a resume, rounds before it count
    as done, and the remaining time is estimated from the rounds run here only. ``clock`` gives
    seconds (injectable for tests). With ``enabled=False`` nothing is printed.
    """

    def __init__(
        self,
        num_rounds: int,
        enabled: bool = True,
        *,
        start_round: int = 1,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        every_rounds: int | None = None,
        every_seconds: float = 30.0,
    ) -> None:
        self._enabled = enabled
        self._total = num_rounds
        self._start_round = start_round
        self._resumed = self._done = 0
        self._stream = sys.stdout if stream is None else stream
        self._clock = clock
        self._every_rounds = every_rounds or max(1, math.ceil(num_rounds / 10))
        self._every_seconds = every_seconds
        self._metrics = ""
        self._started = self._last_line = clock()
        self._progress: Progress | None = None
        if enabled and self._stream.isatty():
            self._progress = Progress(
                TextColumn("[bold]rounds"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                TextColumn("eta {task.fields[eta]}", style="progress.remaining"),
                console=Console(file=self._stream),
                get_time=clock,
                transient=False,
            )
            self._task = self._progress.add_task("", total=num_rounds, eta=_UNKNOWN)

    def __enter__(self) -> RoundProgress:
        if self._progress is not None:
            self._progress.start()
        if self._start_round > 1:
            self.begin(self._start_round)
        return self

    def begin(self, first_round: int) -> None:
        """The run starts at ``first_round`` (``> 1`` after a resume): earlier rounds count as
        done, the remaining time is estimated from here on, and a resume is announced."""
        self._resumed = self._done = first_round - 1
        self._started = self._last_line = self._clock()
        if not self._resumed:
            return
        if self._progress is not None:
            self._progress.update(
                self._task, completed=self._done, description=f"resumed from round {self._resumed}"
            )
        elif self._enabled:
            self._print(f"resumed from round {self._resumed} of {self._total}")

    def update(self, evaluation: Mapping[str, Any]) -> None:
        """Count one finished round; ``evaluation`` is its metrics (``accuracy``, ``asr``),
        empty when the round was not evaluated."""
        self._done += 1
        if "accuracy" in evaluation:  # rounds without evaluation keep the latest
            self._metrics = f"acc {evaluation['accuracy']:.3f}" + (
                f"  asr {evaluation['asr']:.3f}" if "asr" in evaluation else ""
            )
        now = self._clock()
        eta = _hms(
            (now - self._started) / (self._done - self._resumed) * (self._total - self._done)
        )
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=self._metrics or None, eta=eta)
        elif self._enabled and (
            self._done % self._every_rounds == 0
            or self._done >= self._total
            or now - self._last_line >= self._every_seconds
        ):
            self._last_line = now
            percent = self._done * 100 // self._total
            metrics = f"  {self._metrics}" if self._metrics else ""
            self._print(
                f"round {self._done}/{self._total} ({percent}%){metrics}"
                f"  elapsed {_hms(now - self._started)}  eta {eta}"
            )

    def _print(self, line: str) -> None:
        print(line, file=self._stream, flush=True)

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._progress is not None:
            self._progress.stop()
