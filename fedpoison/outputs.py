"""Run outputs: ``results.json`` and ``metrics.csv``, always written atomically.

Both files are rewritten after every round through a temporary file and ``os.replace``, so a
killed run leaves the last complete round on disk and never a truncated file.
``results.json["status"]`` is ``running`` until the last round, then ``complete``.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RESULTS = "results.json"
METRICS = "metrics.csv"


def _new_temp(path: Path) -> Path:
    """Create an empty, unique ``.<name>.<random>.tmp`` beside ``path`` with the mode the umask
    gives (``tempfile.mkstemp`` would make it 0600, unreadable for colleagues)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return tmp


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temp path beside ``path``; on a clean exit it is fsynced and renamed onto ``path``,
    on an error it is removed, so ``path`` is always either the old or the new file. Files get
    the mode the umask allows (0644 under the usual 022)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temp(path)
    try:
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        if exc.filename is None:  # a failed write names no file: name the one being written
            raise OSError(exc.errno, exc.strerror, str(path)) from exc
        raise
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (:func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


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
    """The run's ``results.json``, or ``None`` if absent or unreadable."""
    try:
        return json.loads((run_dir / RESULTS).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
