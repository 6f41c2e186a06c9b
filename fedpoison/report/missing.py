"""Runs that are missing or failed, as the report's "Missing or failed runs" section.

Four kinds: runs whose ``results.json`` is not ``complete`` (killed or unfinished), job
directories with ``.hydra/`` but no ``results.json`` (failed before the first round),
unreadable ``results.json`` files, and — per dataset and variant — the combinations of the
observed defenses × attacks × numbers of malicious clients × seeds without a complete run, the
pool size written as ``threat.num_malicious=…`` (never ``f``, which the README keeps for the
rule's assumed number of Byzantine clients).
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from fedpoison.report.collect import Run, Study


@dataclass(frozen=True)
class Hole:
    """A grid combination without a complete run."""

    dataset: str
    variant: str
    defense: str
    attack: str
    num_malicious: int
    seed: int | None

    def describe(self, with_dataset: bool) -> str:
        """``defense=… attack=… threat.num_malicious=… seed=…``, prefixed by dataset and
        variant when asked."""
        text = (
            f"defense={self.defense} attack={self.attack} "
            f"threat.num_malicious={self.num_malicious} seed={self.seed}"
        )
        if with_dataset:
            text = " ".join(filter(None, (f"dataset={self.dataset}", self.variant, text)))
        return text


def _key(run: Run) -> Hole:
    return Hole(run.dataset, run.variant, run.defense, run.attack, run.num_malicious, run.seed)


def grid_holes(runs: list[Run]) -> list[Hole]:
    """Combinations of the values seen per (dataset, variant) that have no complete run."""
    by_scope: dict[tuple[str, str], list[Run]] = defaultdict(list)
    for run in runs:
        by_scope[(run.dataset, run.variant)].append(run)
    done = {_key(run) for run in runs if run.complete}
    holes = []
    for (dataset, variant), members in sorted(by_scope.items()):
        axes = [
            sorted({getattr(run, field) for run in members}, key=lambda v: (v is None, v))
            for field in ("defense", "attack", "num_malicious", "seed")
        ]
        for defense, attack, f, seed in itertools.product(*axes):
            hole = Hole(dataset, variant, defense, attack, f, seed)
            if hole not in done:
                holes.append(hole)
    return holes


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root)) or "."
    except ValueError:
        return str(path)


def markdown_section(study: Study) -> list[str]:
    """The lines of the "Missing or failed runs" section of ``report.md``."""
    lines = ["## Missing or failed runs", ""]
    unfinished = [run for run in study.runs if not run.complete]
    partial = {_key(run): run for run in unfinished}
    holes = grid_holes(study.runs)
    if not (unfinished or study.orphans or study.unreadable or holes):
        return [*lines, "none", ""]
    if unfinished:
        lines += ["Unfinished runs (status other than complete):", ""]
        for run in unfinished:
            of = f" of {run.num_rounds}" if run.num_rounds is not None else ""
            lines.append(
                f"- `{_relative(run.path, study.root)}`: {run.status}, {len(run.rounds)}{of} rounds"
            )
        lines.append("")
    if study.orphans:
        lines += ["Failed before the first round (`.hydra/` but no results.json):", ""]
        for path, overrides in study.orphans:
            detail = f" ({' '.join(overrides)})" if overrides else ""
            lines.append(f"- `{_relative(path, study.root)}`{detail}")
        lines.append("")
    if study.unreadable:
        lines += ["Unreadable results.json:", ""]
        lines += [f"- `{_relative(path, study.root)}`" for path in study.unreadable]
        lines.append("")
    if holes:
        scopes = {(run.dataset, run.variant) for run in study.runs}
        lines += [
            "Missing from the grid (defense × attack × malicious clients × seed seen, "
            "no complete run):",
            "",
        ]
        for hole in holes:
            started = partial.get(hole)
            note = f" — unfinished: `{_relative(started.path, study.root)}`" if started else ""
            lines.append(f"- {hole.describe(len(scopes) > 1)}{note}")
        lines.append("")
    return lines
