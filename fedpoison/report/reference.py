"""Published numbers next to a study's: ``fedpoison-report DIR --reference FILE``.

``FILE`` is a CSV with the header ``defense,attack,error`` and optionally ``asr``: names as
fedpoison's ``defense=``/``attack=`` options (``none`` = no attack), ``error`` the test error rate
(1 − accuracy, the unit of the FLTrust and FoundationFL tables), ``asr`` the backdoor attack
success rate; a blank cell = not reported. Lines starting with ``#`` are comments (name the
paper and table there); they are copied into the report.

Every table of the study gets a section: our error (1 − the final accuracy, mean over seeds)
against the published one, and the difference; the cells that differ by more than the
tolerance are listed, so that each can be explained.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from fedpoison.report.summary import Cell, Summary, TableKey, attack_label, attack_order, mean_std
from fedpoison.report.tables import MISSING, markdown_row, table_title

COLUMNS = ("defense", "attack", "error", "asr")
REQUIRED = COLUMNS[:3]


@dataclass(frozen=True)
class Reference:
    """Published ``{"error": …, "asr": …}`` per ``(defense, attack)``, and the file's comments."""

    path: Path
    notes: tuple[str, ...]
    values: dict[tuple[str, str], dict[str, float]]


def _rate(text: str, where: str) -> float | None:
    if not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{where}: {value} is not a rate in [0, 1]")
    return value


def load_reference(path: Path) -> Reference:
    """Read ``path``; ``ValueError`` naming the line for anything malformed."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None
    notes = tuple(line.lstrip("#").strip() for line in lines if line.startswith("#"))
    numbered = [
        (i, line) for i, line in enumerate(lines, 1) if line.strip() and not line.startswith("#")
    ]
    rows = csv.reader(line for _, line in numbered)
    header = [name.strip() for name in next(rows, [])]
    if not set(REQUIRED) <= set(header) or not set(header) <= set(COLUMNS):
        raise ValueError(
            f"{path}: the header must be {','.join(REQUIRED)}[,asr], "
            f"got {','.join(header) or 'nothing'}"
        )
    values: dict[tuple[str, str], dict[str, float]] = {}
    for (number, _), row in zip(numbered[1:], rows, strict=True):
        where = f"{path}:{number}"
        if len(row) != len(header):
            raise ValueError(f"{where}: {len(row)} fields, the header has {len(header)}")
        record = dict(zip(header, row, strict=True))
        key = (record["defense"].strip(), record["attack"].strip())
        if key in values:
            raise ValueError(f"{where}: {key[0]} × {key[1]} appears twice")
        rates = {
            name: _rate(record[name], f"{where} ({name})")
            for name in ("error", "asr")
            if name in record
        }
        values[key] = {name: value for name, value in rates.items() if value is not None}
    return Reference(path=path, notes=notes, values=values)


def _ours(cell: Cell | None) -> dict[str, float]:
    if cell is None or math.isnan(cell.mean):
        return {}
    ours = {"error": 1.0 - cell.mean}
    if cell.asr is not None:
        ours["asr"] = mean_std(cell.asr)[0]
    return ours


def _compare(mine: float | None, theirs: float | None, tolerance: float) -> tuple[str, bool]:
    """``("ours / published (±Δ)", beyond tolerance)`` for one quantity."""
    text = f"{_number(mine, 3)} / {_number(theirs, 2)}"
    if mine is None or theirs is None:
        return text, False
    delta = mine - theirs
    text += f" ({delta:+.3f})"
    return text, abs(delta) > tolerance


def _number(value: float | None, digits: int) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def _cell(
    ours: dict[str, float], published: dict[str, float], tolerance: float
) -> tuple[str, list[str]]:
    """The table cell (bold where beyond tolerance) and the quantities beyond it, described."""
    parts, far = [], []
    for name, label in (("error", ""), ("asr", "ASR ")):
        if name in ours or name in published:
            text, beyond = _compare(ours.get(name), published.get(name), tolerance)
            parts.append(f"**{label}{text}**" if beyond else f"{label}{text}")
            far += [f"{label or 'error '}{text}"] if beyond else []
    return ", ".join(parts) or MISSING, far


def _attacks(summary: Summary, table: TableKey, reference: Reference) -> list[str]:
    ours = summary.attacks(table)
    extra = sorted({a for _, a in reference.values} - set(ours), key=attack_order)
    return ours + extra


def markdown_section(summary: Summary, reference: Reference, tolerance: float) -> list[str]:
    """Our error (and ASR) against the published numbers, per table of the study."""
    lines = [f"## Against published numbers (`{reference.path.name}`)", ""]
    lines += [f"> {note}" for note in reference.notes] + ([""] if reference.notes else [])
    lines += [
        "Cells: our test error (1 − final accuracy, mean over seeds) / published (ours − "
        f"published); backdoor attacks add the ASR. Bold: differs by more than {tolerance:g}.",
        "",
    ]
    published_defenses = {d for d, _ in reference.values}
    tables = summary.tables()
    for table in tables:
        lines += [f"### {table_title(summary, table)}", ""] if len(tables) > 1 else []
        attacks = _attacks(summary, table, reference)
        ours = summary.defenses(table)
        defenses = ours + sorted(published_defenses - set(ours))
        lines += [
            markdown_row(["defense", *map(attack_label, attacks)]),
            markdown_row(["---"] * (len(attacks) + 1)),
        ]
        far: list[str] = []
        for defense in defenses:
            texts = []
            for attack in attacks:
                own = _ours(summary.cell(table, defense, attack))
                text, beyond = _cell(own, reference.values.get((defense, attack), {}), tolerance)
                texts.append(text)
                far += [f"{defense} × {attack}: {item}" for item in beyond]
            lines.append(markdown_row([defense, *texts]))
        lines.append("")
        if far:
            lines += [f"Differences larger than {tolerance:g} ({len(far)}):", ""]
            lines += [f"- {item}" for item in far] + [""]
        else:
            lines += [f"Every compared cell is within {tolerance:g} of the published number.", ""]
    return lines
