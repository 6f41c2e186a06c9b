"""``RoundRecorder``: a run directory ``fedpoison-report`` reads, written from any Flower app.

The recorder writes ``results.json``, ``metrics.csv`` and the ``rounds.jsonl`` journal in the
schema of the ``fedpoison`` command's runs (see :mod:`fedpoison.outputs` for when each file is
written). It takes rounds three ways:

- as ``RobustStrategy(..., recorder=recorder)``: called with every round's
  :class:`~fedpoison.strategies.record.RoundRecord` and the new global model;
- around the ``evaluate_fn`` a Flower strategy's ``start`` calls after every round
  (:meth:`RoundRecorder.evaluate_fn`), for ``FedAvg``, ``Krum``, ``fedpoison.Adversary``, …;
- by hand, :meth:`RoundRecorder.add_round`.

Every round costs the same to write (one journal line, flushed; fsynced only when asked, see
:mod:`fedpoison.outputs` on durability), however long the run.
The CLI's recorder (:class:`fedpoison.execute.RunRecorder`) is this class plus checkpoints.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

from flwr.app import ArrayRecord, MetricRecord

from fedpoison.outputs import RUN_FILES, Journal, asr_lifespan, journal_line, write_outputs
from fedpoison.provenance import collect, peak_rss_mib
from fedpoison.strategies.record import MetricValue, RoundRecord

EvaluateFn = Callable[[int, ArrayRecord], MetricRecord | None]
FINAL_KEYS = ("accuracy", "loss", "asr", "epsilon", "delta")
"""Keys of the last round copied into ``results.json["final"]``."""


def _claim(run_dir: Path, overwrite: bool) -> None:
    """Refuse a directory that holds anything, unless ``overwrite`` (then remove a run's files
    there; other files stay)."""
    if run_dir.exists() and not run_dir.is_dir():
        raise NotADirectoryError(f"{run_dir} is not a directory; choose a new or empty directory")
    entries = sorted(p.name for p in run_dir.iterdir()) if run_dir.exists() else []
    if entries and not overwrite:
        shown = ", ".join(entries[:3]) + (", …" if len(entries) > 3 else "")
        raise FileExistsError(
            f"{run_dir} is not empty ({shown}); choose a new or empty directory, "
            "or pass overwrite=True to replace the run there"
        )
    for name in RUN_FILES:
        (run_dir / name).unlink(missing_ok=True)


class RoundRecorder:
    """Writes a run's rounds to ``run_dir`` as ``fedpoison-report`` reads them.

    Args:
        run_dir: a new or empty directory (created if needed).
        config: what the run was: ``fedpoison-report`` groups runs by ``dataset.name``,
            ``defense.name``, ``attack.name`` and ``seed`` (and shows ``num_rounds``); any
            other key that differs between runs becomes the run's variant.
        malicious: ids of the malicious clients (their count is the report's ``f``).
        overwrite: replace the ``results.json``/``metrics.csv``/``rounds.jsonl`` of a run
            already in ``run_dir`` instead of refusing the directory.
        fsync_every_round: fsync the journal after every round; by default each round is
            flushed (it survives the process being killed) and the journal is fsynced when
            the run ends (and before each of the CLI's checkpoints), which is all an OS crash
            needs for ``resume`` (:mod:`fedpoison.outputs`, durability).

    Raises:
        FileExistsError: ``run_dir`` is not empty and ``overwrite`` is false.

    Used as a context manager, the run is marked ``complete`` when the block ends and
    ``failed`` (with the error's first line) when it raises; :meth:`complete` and :meth:`fail`
    do the same by hand. ``provenance`` gets versions, host and hardware, ``startup_s``
    (from the recorder's creation to the first round: engine start-up, node discovery, any
    other one-off cost), ``wall_s`` and peak memory.

    Example, recording what a Flower strategy's ``start`` passes to ``evaluate_fn``
    (round 0, the initial model, is evaluated but not a round of the run):

    >>> import tempfile
    >>> from pathlib import Path
    >>> from flwr.app import ArrayRecord, MetricRecord
    >>> from fedpoison.outputs import load_results
    >>> run_dir = Path(tempfile.mkdtemp()) / "run"
    >>> def central_evaluate(server_round, arrays):
    ...     return MetricRecord({"accuracy": 0.5 + server_round / 10, "loss": 1.0})
    >>> config = {"dataset": {"name": "digits"}, "defense": {"name": "fedavg"}, "seed": 0}
    >>> with RoundRecorder(run_dir, config=config) as recorder:
    ...     evaluate_fn = recorder.evaluate_fn(central_evaluate)
    ...     for server_round in range(3):  # as FedAvg().start(..., evaluate_fn=evaluate_fn)
    ...         _ = evaluate_fn(server_round, ArrayRecord())
    >>> done = load_results(run_dir)
    >>> done["status"], [row["accuracy"] for row in done["rounds"]], done["final"]
    ('complete', [0.6, 0.7], {'accuracy': 0.7, 'loss': 1.0})
    >>> RoundRecorder(run_dir)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    FileExistsError: ... is not empty (metrics.csv, results.json, rounds.jsonl); ...
    """

    def __init__(
        self,
        run_dir: str | os.PathLike[str],
        *,
        config: Mapping[str, Any] | None = None,
        malicious: Iterable[int] = (),
        overwrite: bool = False,
        fsync_every_round: bool = False,
    ) -> None:
        path = Path(run_dir)
        _claim(path, overwrite)
        config = dict(config or {})
        seed = config.get("seed")
        results: dict[str, Any] = {
            "status": "running",
            "config": config,
            "provenance": collect(None if seed is None else int(seed), {}),
            "choices": {},
            "malicious_clients": sorted(malicious),
            "rounds": [],
            "final": None,
        }
        self._begin(path, results, fsync_every_round=fsync_every_round)

    def _begin(
        self,
        run_dir: Path,
        results: dict[str, Any],
        wall_s: Callable[[], float] | None = None,
        fsync_every_round: bool = False,
    ) -> None:
        """Start a session on ``results`` (its ``rounds`` may hold an earlier session's), with
        ``wall_s()`` the run's seconds so far (default: since now)."""
        self.run_dir, self.results = run_dir, results
        self.fsync_every_round = fsync_every_round
        self._created = time.perf_counter()
        self._wall_s = wall_s or (lambda: time.perf_counter() - self._created)
        self._journal = Journal(run_dir, results["rounds"])
        self._rounds_this_session = 0
        self._pending = ""  # the journal line with the last row's write_s
        self._finished = False
        self.write_errors: list[OSError] = []  # an engine may swallow the ServerApp's error

    # -- taking rounds --------------------------------------------------------------------
    def __call__(self, record: RoundRecord, arrays: ArrayRecord) -> None:
        """Record a ``RobustStrategy`` round; ``arrays`` is the global model after it."""
        timing = record.timing
        round_s = 0.0 if timing is None else timing.train_s + timing.aggregate_s + timing.eval_s
        row = record.to_dict()
        self._record(row, arrays, round_s)
        if timing is not None:
            record.timing = replace(timing, write_s=row["write_s"])

    def add_round(self, server_round: int, metrics: Mapping[str, MetricValue]) -> None:
        """Record round ``server_round`` (1-based, increasing) with ``metrics``."""
        self._record({"round": server_round, **metrics}, None, 0.0)

    def evaluate_fn(self, evaluate: EvaluateFn | None = None) -> EvaluateFn:
        """An ``evaluate_fn`` for a Flower strategy's ``start``: it calls ``evaluate`` (if
        given) and records the round with the metrics it returns (none: a row with only
        ``round``). Round 0, the initial model's evaluation, is returned but not recorded."""

        def recorded(server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
            metrics = evaluate(server_round, arrays) if evaluate is not None else None
            if server_round == 0:
                self.results["provenance"]["startup_s"] = time.perf_counter() - self._created
            else:
                self.add_round(server_round, dict(metrics or {}))
            return metrics

        return recorded

    def _record(self, row: dict[str, Any], arrays: ArrayRecord | None, round_s: float) -> None:
        """Append ``row`` to the results and the journal; ``round_s``: the round's own seconds
        (the first round's are not start-up)."""
        started = time.perf_counter()
        self._check_order(row["round"])
        prov = self.results["provenance"]
        if self._rounds_this_session == 0 and "startup_s" not in prov:
            prov["startup_s"] = max(started - round_s - self._created, 0.0)
        self.results["rounds"].append(row)
        prov["wall_s"] = self._wall_s()
        try:
            if self._rounds_this_session == 0:  # results.json exists from the first round on
                write_outputs(self.run_dir, self.results)
            self._journal.append(self._pending + journal_line(row))
            if self.fsync_every_round:
                self._journal.sync()
            if arrays is not None:
                self._persist(row["round"], arrays)
        except OSError as exc:
            self.write_errors.append(exc)
            raise
        self._rounds_this_session += 1
        row["write_s"] = time.perf_counter() - started
        self._pending = journal_line({"round": row["round"], "write_s": row["write_s"]})

    def _check_order(self, server_round: int) -> None:
        if self._finished:
            raise ValueError(f"{self.run_dir}: the run is already {self.results['status']}")
        rounds = self.results["rounds"]
        last = rounds[-1]["round"] if rounds else 0
        if not (isinstance(server_round, int) and server_round > last):
            raise ValueError(f"round {server_round!r} after round {last}: rounds must increase")

    def _persist(self, server_round: int, arrays: ArrayRecord) -> None:
        """Hook for more per-round state (the CLI's checkpoints, which call :meth:`_sync`
        first); nothing here."""

    def _sync(self) -> None:
        """fsync the journal (before a checkpoint, so a checkpoint that survives an OS crash
        has its rounds in the journal)."""
        self._journal.sync()

    # -- ending -------------------------------------------------------------------------
    def complete(self) -> None:
        """Mark the run complete; ``final`` is the last round's accuracy, loss, ASR and ε/δ,
        and, when the config's ``threat.end_round`` stops the adversary before the last
        round, the backdoor's lifespan after it (:func:`~fedpoison.outputs.asr_lifespan`)."""
        rounds = self.results["rounds"]
        last = rounds[-1] if rounds else {}
        final = {k: last[k] for k in FINAL_KEYS if k in last}
        threat = self.results["config"].get("threat")
        end_round = threat.get("end_round") if isinstance(threat, Mapping) else None
        final.update(asr_lifespan(rounds, end_round))
        self.results["final"] = final
        self.results["provenance"]["peak_rss_mib"] = peak_rss_mib()
        self._finish("complete")

    def fail(self, error: str) -> None:
        """Mark the run failed with ``error``; the rounds so far stay on disk."""
        self.results["error"] = error
        self._finish("failed")

    def _finish(self, status: str) -> None:
        self.results["status"] = status
        self.results["provenance"]["wall_s"] = self._wall_s()
        self._finished = True
        self._journal.append(self._pending)  # the last row's write_s
        self._journal.sync()
        self._journal.close()
        write_outputs(self.run_dir, self.results)

    def __enter__(self) -> RoundRecorder:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._finished:
            return
        if exc is None:
            self.complete()
        else:
            lines = str(exc).strip().splitlines()
            self.fail(lines[0] if lines else type(exc).__name__)
