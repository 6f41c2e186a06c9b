"""Run outputs: ``results.json``, ``metrics.csv`` and the ``rounds.jsonl`` journal.

Writing a run costs the same every round however long it runs:

- ``rounds.jsonl`` gets one line per round, appended and flushed to the kernel before the next
  round starts (:class:`Journal`); a line ``{"round": r, "write_s": …}`` completes round
  ``r``'s row once its write time is known.
- ``results.json`` and ``metrics.csv`` are rewritten whole, atomically (temp file + fsync +
  rename), only at a session's first round and when the run ends (``complete`` or ``failed``).

Durability (``output.fsync_every_round``; README, "What a run prints and writes"): a line
that was written and flushed survives the process however it ends (SIGKILL, the OOM killer,
Ctrl-C): the kernel holds it. Only an OS crash or a power loss can lose it, and ``fsync``
guards against those alone. By default the journal is fsynced before every checkpoint and when
the run ends (complete or failed), not every round: ``resume=true`` restarts from the
checkpoint and drops the journal's rows after it (:func:`fedpoison.checkpoint.checkpoint_rounds`),
so an fsync of those rows protects nothing resume keeps, while each costs milliseconds on a
busy disk. After an OS crash the report may then miss the rounds after the last checkpoint
that the kernel had not yet written back (about 30 s of them at Linux's defaults), rounds that
``resume=true`` runs again anyway. ``output.fsync_every_round=true`` fsyncs every round.

So a killed run leaves every completed round on disk, never a truncated file (a torn last
journal line is ignored), and :func:`load_results` — the one reader, used by ``fedpoison-report``,
by the CLI's checks of a run directory and by ``resume=true`` — puts the journal's rounds into
the document while ``results.json["status"]`` is still ``running``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from fedpoison.files import atomic_write_text

RESULTS = "results.json"
METRICS = "metrics.csv"
JOURNAL = "rounds.jsonl"
RUN_FILES = (RESULTS, METRICS, JOURNAL)
"""The files of a run's results (``checkpoint.pt`` and the log belong to the CLI)."""


def asr_lifespan(
    rounds: Sequence[Mapping[str, Any]], end_round: int | None, threshold: float = 0.5
) -> dict[str, Any]:
    """The backdoor's durability after the adversary stops (Neurotoxin's lifespan metric):
    ``{"asr_lifespan": L, "asr_lifespan_censored": c}``, or ``{}`` without an ``end_round``
    or without ASR in a round after it.

    ``L`` is the number of rounds after ``end_round`` until the ASR is first below
    ``threshold``: ``r* − end_round`` for the first evaluated round ``r* > end_round`` with
    ``asr < threshold`` (``L = 1``: the backdoor is gone one round after the attack stops;
    ``L = 0`` when the ASR was already below it in round ``end_round``). When it never falls
    below during the run, ``L`` is the last round minus ``end_round`` (a lower bound) and
    ``c`` is true.

        >>> rows = [{"round": r, "asr": a} for r, a in enumerate([0.9, 0.95, 0.7, 0.4], 1)]
        >>> asr_lifespan(rows, end_round=2)
        {'asr_lifespan': 2, 'asr_lifespan_censored': False}
        >>> asr_lifespan(rows[:3], end_round=2)
        {'asr_lifespan': 1, 'asr_lifespan_censored': True}
    """
    if end_round is None:
        return {}
    after = [row for row in rounds if row.get("asr") is not None and row["round"] >= end_round]
    if not any(row["round"] > end_round for row in after):
        return {}
    for row in after:
        if row["asr"] < threshold:
            return {"asr_lifespan": row["round"] - end_round, "asr_lifespan_censored": False}
    return {"asr_lifespan": after[-1]["round"] - end_round, "asr_lifespan_censored": True}


def _json_safe(value: Any) -> Any:
    """NaN/Inf → None (strict JSON), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _csv_cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return value


def metrics_csv(rounds: list[dict[str, Any]]) -> str:
    """One row per round; list-valued fields (rejected ids, invalid replies) as JSON."""
    columns: list[str] = []
    for row in rounds:
        columns += [k for k in row if k not in columns]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rounds:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return buf.getvalue()


def write_outputs(run_dir: Path, results: dict[str, Any]) -> None:
    """Write ``results.json`` and ``metrics.csv`` for ``results`` into ``run_dir``."""
    atomic_write_text(run_dir / RESULTS, json.dumps(_json_safe(results), indent=2) + "\n")
    atomic_write_text(run_dir / METRICS, metrics_csv(results["rounds"]))


def read_results(run_dir: Path) -> dict[str, Any] | None:
    """The run's ``results.json`` as written, or ``None`` if absent, unreadable or not an
    object. Between a session's first round and its end it lags: see :func:`load_results`."""
    try:
        data = json.loads((run_dir / RESULTS).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def journal_line(row: dict[str, Any]) -> str:
    """``row`` as one journal line. NaN and ±Inf stay (``NaN``, ``Infinity``): the journal
    round-trips a row exactly, so a resumed run's rows equal an uninterrupted one's."""
    return json.dumps(row, separators=(",", ":")) + "\n"


def read_journal(run_dir: Path) -> list[dict[str, Any]]:
    """The rounds in ``run_dir/rounds.jsonl`` in order (none if it is absent). A line for the
    round of the row before it completes that row; reading stops at the first line that is
    not a JSON object with a ``round`` — a torn last line of a killed run."""
    try:
        lines = (run_dir / JOURNAL).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    rows: list[dict[str, Any]] = []
    for line in lines:
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            break
        if not isinstance(entry, dict) or "round" not in entry:
            break
        if rows and rows[-1]["round"] == entry["round"]:
            rows[-1].update(entry)
        else:
            rows.append(entry)
    return rows


def _longer(written: list[dict[str, Any]], run_dir: Path) -> list[dict[str, Any]]:
    """The journal's rounds, unless ``results.json`` holds more (``written``): both record the
    same rounds in order, and either may lag the other by what a killed run did not finish."""
    journal = read_journal(run_dir)
    return journal if len(journal) >= len(written) else written


def load_rounds(run_dir: Path) -> list[dict[str, Any]]:
    """Every completed round of the run in ``run_dir``, in order, exactly as recorded (NaN
    kept where the journal has it): what ``resume=true`` continues from."""
    results = read_results(run_dir)
    return _longer(list((results or {}).get("rounds") or []), run_dir)


def load_results(run_dir: Path) -> dict[str, Any] | None:
    """The run in ``run_dir`` with every completed round: ``results.json``, whose ``rounds``
    come from the journal while the run is ``running`` (or was killed) and the journal is
    ahead. ``None`` when ``results.json`` is absent or unreadable. The one reader of a run
    directory for ``fedpoison-report`` and the CLI's checks (resume: :func:`load_rounds`)."""
    results = read_results(run_dir)
    if results is not None and results.get("status") == "running":
        results["rounds"] = _json_safe(_longer(list(results.get("rounds") or []), run_dir))
    return results


class Journal:
    """``rounds.jsonl`` open for appending, starting from ``rows`` (written atomically first:
    a resumed run's journal then holds exactly the rounds it continues from)."""

    def __init__(self, run_dir: Path, rows: list[dict[str, Any]]) -> None:
        path = run_dir / JOURNAL
        atomic_write_text(path, "".join(journal_line(row) for row in rows))
        self._file: IO[str] | None = open(path, "a", encoding="utf-8")  # noqa: SIM115
        self._unsynced = False

    def append(self, text: str) -> None:
        """Append ``text`` (whole lines) and flush it to the kernel: from then on it survives
        the process being killed (not an OS crash: :meth:`sync`)."""
        file = self._open()
        file.write(text)
        file.flush()
        self._unsynced = True

    def sync(self) -> None:
        """fsync what was appended since the last sync (if anything): from then on it survives
        an OS crash or a power loss."""
        if self._unsynced:
            os.fsync(self._open().fileno())
            self._unsynced = False

    def _open(self) -> IO[str]:
        if self._file is None:
            raise ValueError("the journal is closed")
        return self._file

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None
