"""``fedpoison-report --worst-case``: each defense at its worst attack, after tuning.

ByzFL's benchmark (``find_best_hyperparameters``) reports a defense by the hyper-parameters
that maximise its minimum accuracy over the attacks. Here, for one defense in one setting
(dataset, number of malicious clients, and every varying setting that is not tuned):

1. each *choice* of the tuned settings (e.g. ``training.lr=0.1``, ``defense.f=2``) scores
   each attack by the mean over seeds of the metric, at the final round (``final``) or at the
   round where the seed-mean curve is best (``best``, ByzFL's ``np.argmax`` over its
   evaluation steps);
2. the choice's worst case is the worst of those scores over the attacks (no-attack runs are
   shown, never scored); a choice missing an attack another choice has is not eligible;
3. the chosen hyper-parameters are those with the best worst case (ties: the first choice in
   sorted order, as ByzFL keeps the first strict improvement).

Tuned settings: the keys given with ``--tune``, by default every setting that varies within a
(dataset, defense, attack, malicious count) group; seeds are always replicates.
"""

from __future__ import annotations

import csv
import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedpoison.report.collect import NO_ATTACK, Run, setting, varying_keys
from fedpoison.report.summary import Cell, Summary, attack_label, attack_order

AT = ("final", "best")
"""Where a run's curve is read: its final value, or the seed-mean curve's best round."""


def score(cell: Cell, at: str, higher_is_better: bool) -> float:
    """``cell``'s metric over seeds: the final mean, or the best round of the mean curve."""
    if at == "final":
        return cell.mean
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # rounds without evaluation: all-NaN
        curve = np.nanmean(cell.curve, axis=0)
    if np.isnan(curve).all():
        return math.nan
    return float(np.nanmax(curve) if higher_is_better else np.nanmin(curve))


@dataclass(frozen=True)
class WorstCase:
    """One defense in one setting, at its chosen hyper-parameters."""

    dataset: str
    num_malicious: int
    setting: str
    """The varying settings that are not tuned, ``key=value`` joined by spaces."""
    defense: str
    chosen: str
    """The tuned settings of the chosen choice, ``key=value`` joined by spaces."""
    scores: dict[str, float]
    """Attack → score at the chosen choice (with ``none`` when it has no-attack runs)."""
    worst_attack: str
    worst: float
    choices: int
    """Choices found; those missing an attack were not eligible."""
    eligible: int


def _label(run: Run, keys: list[str]) -> str:
    return " ".join(f"{k}={setting(run, k)}" for k in keys)


def worst_cases(
    summary: Summary, runs: list[Run], tune: list[str] | None = None, at: str = "final"
) -> list[WorstCase]:
    """The :class:`WorstCase` of every (setting, defense) of ``summary``'s cells, sorted.

    Raises:
        ValueError: ``at`` is not one of :data:`AT`, or a ``tune`` key does not vary.
    """
    if at not in AT:
        raise ValueError(f"--worst-case must be one of {', '.join(AT)}, got {at!r}")
    varying = varying_keys(runs)
    unknown = sorted(set(tune or ()) - set(varying))
    if unknown:
        raise ValueError(
            f"--tune {', '.join(unknown)}: not a setting that varies in this study "
            f"(varying: {', '.join(varying) or 'none'})"
        )
    tuned = sorted(tune) if tune else varying
    fixed = [k for k in varying if k not in tuned]
    groups: dict[tuple[str, int, str, str], dict[str, dict[str, Cell]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for cell in summary.cells.values():
        first = cell.runs[0]
        key = (cell.dataset, cell.num_malicious, _label(first, fixed), cell.defense)
        groups[key][_label(first, tuned)][cell.attack] = cell
    found = [_choose(key, choices, at, summary.higher_is_better) for key, choices in groups.items()]
    return sorted(
        (w for w in found if w is not None),
        key=lambda w: (w.dataset, w.num_malicious, w.setting, w.defense),
    )


def _choose(
    key: tuple[str, int, str, str],
    choices: dict[str, dict[str, Cell]],
    at: str,
    higher_is_better: bool,
) -> WorstCase | None:
    """The choice with the best worst case over the attacks of ``choices``; ``None`` when no
    choice has attacked runs of every attack."""
    attacks = sorted({a for cells in choices.values() for a in cells if a != NO_ATTACK})
    worse = min if higher_is_better else max
    best: tuple[float, str, str] | None = None
    eligible = 0
    for choice in sorted(choices):
        cells = choices[choice]
        scores = [(score(cells[a], at, higher_is_better), a) for a in attacks if a in cells]
        if not attacks or len(scores) < len(attacks) or any(math.isnan(s) for s, _ in scores):
            continue
        eligible += 1
        value, attack = worse(scores)
        if best is None or (value > best[0] if higher_is_better else value < best[0]):
            best = (value, attack, choice)
    if best is None:
        return None
    chosen = choices[best[2]]
    scores_at = {
        a: score(chosen[a], at, higher_is_better) for a in sorted(chosen, key=attack_order)
    }
    return WorstCase(*key, best[2], scores_at, best[1], best[0], len(choices), eligible)


CSV_COLUMNS = (
    "dataset", "num_malicious", "setting", "defense", "chosen", "worst_attack", "worst_case",
    "choices", "eligible_choices",
)  # fmt: skip


def write_csv(cases: list[WorstCase], path: Path) -> None:
    """``worst_case.csv``: one row per (setting, defense); floats to 12 significant digits."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for w in cases:
            writer.writerow(
                [w.dataset, w.num_malicious, w.setting, w.defense, w.chosen, w.worst_attack,
                 f"{w.worst:.12g}", w.choices, w.eligible]
            )  # fmt: skip


def markdown(cases: list[WorstCase], metric: str, at: str) -> list[str]:
    """The report's "Worst case after tuning" section: one table per setting."""
    where = "final round" if at == "final" else "best round of the seed-mean curve (ByzFL's)"
    lines = [
        "## Worst case after tuning",
        "",
        f"Each defense at the tuned settings that maximise its worst {metric} over the attacks "
        f"(mean over seeds at the {where}); the cells are the scores at that choice.",
        "",
    ]
    tables: dict[tuple[str, int, str], list[WorstCase]] = defaultdict(list)
    for w in cases:
        tables[(w.dataset, w.num_malicious, w.setting)].append(w)
    for (dataset, malicious, fixed), rows in tables.items():
        attacks = sorted({a for w in rows for a in w.scores}, key=attack_order)
        title = ", ".join(filter(None, [dataset, f"{malicious} malicious", fixed]))
        lines += [
            f"### {title}",
            "",
            "| defense | chosen | "
            + " | ".join(attack_label(a) for a in attacks)
            + " | worst case | eligible choices |",
            "|" + " --- |" * (len(attacks) + 4),
        ]
        for w in rows:
            cells = [f"{w.scores[a]:.4f}" if a in w.scores else "–" for a in attacks]
            worst = f"{w.worst:.4f} ({w.worst_attack})"
            lines.append(
                f"| {w.defense} | {w.chosen or '–'} | {' | '.join(cells)} | {worst} "
                f"| {w.eligible}/{w.choices} |"
            )
        lines.append("")
    if not cases:
        lines += ["No defense has complete attacked runs of every attack.", ""]
    return lines
