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
from pathlib import Path
from typing import Any

from fedpoison.files import atomic_write_text

RESULTS = "results.json"
METRICS = "metrics.csv"


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
