"""Statistics of a study per configuration, over seeds, and per table of the report.

A :class:`Cell` holds the complete runs of one configuration ``(dataset, variant, defense,
attack, num_malicious)``. A table is ``(dataset, variant, num_malicious)``: rows are defenses,
columns attacks. When a table has no run without attack, its no-attack column falls back to the
no-attack runs with the fewest malicious clients of the same dataset and variant (malicious
clients behave honestly without an attack).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from fedpoison.report.collect import NO_ATTACK, Run

METRICS = ("accuracy", "loss")
REFERENCE_DEFENSE = "fedavg"
TableKey = tuple[str, str, int]
"""``(dataset, variant, num_malicious)``."""
CSV_COLUMNS = (
    "dataset", "defense", "attack", "num_malicious", "variant", "mean", "std", "n_seeds",
    "asr_mean", "asr_std", "precision", "recall", "worst_case", "benign_cost",
)  # fmt: skip


def mean_std(values: np.ndarray) -> tuple[float, float]:
    """Mean and sample standard deviation (``ddof=1``; 0.0 for a single value)."""
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def mean_t_interval(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean over axis 0 and the half-width of its two-sided 95 % Student-t interval.

    Per column, over its ``n`` non-NaN values with sample standard deviation ``s`` (``ddof=1``):
    the interval is mean ± t·s/√n, ``t`` the 0.975 quantile of Student's t with ``n − 1`` degrees
    of freedom (12.71 for n = 2, 4.30 for n = 3; the normal 1.96 only as n → ∞). The half-width
    is NaN where ``n < 2`` (no interval), the mean NaN where ``n = 0``.
    """
    from scipy.stats import t  # imported on use: SciPy's stats module is slow to import

    present = ~np.isnan(values)
    n = present.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(present, values, 0.0).sum(axis=0) / n
        squares = np.where(present, values - mean, 0.0) ** 2
        std = np.sqrt(squares.sum(axis=0) / (n - 1))
        return mean, t.ppf(0.975, n - 1) * std / np.sqrt(n)


def malicious_label(count: int) -> str:
    """``4 malicious clients``: the report's words for the size of the malicious pool.

    Never ``f``, which the README keeps for the rule's assumed number of Byzantine clients.
    """
    return f"{count} malicious client{'' if count == 1 else 's'}"


def _last(run: Run, key: str) -> float:
    """``final[key]`` (the last evaluated round's while ``final`` is missing); NaN when
    undefined."""
    source = run.final or next((row for row in reversed(run.rounds) if key in row), {})
    value = source.get(key)
    return math.nan if value is None else float(value)


def _pooled(runs: tuple[Run, ...], key: str) -> float | None:
    """Mean of ``key`` over every round of every run where it is defined."""
    values = [row[key] for run in runs for row in run.rounds if row.get(key) is not None]
    return float(np.mean(values)) if values else None


@dataclass(frozen=True)
class Cell:
    """The complete runs (seeds) of one configuration and their statistics."""

    dataset: str
    variant: str
    defense: str
    attack: str
    num_malicious: int
    runs: tuple[Run, ...]
    values: np.ndarray
    """Final metric per run."""
    asr: np.ndarray | None
    """Final backdoor ASR per run, for backdoor-type attacks (rounds with ``asr``)."""
    curve: np.ndarray
    """Metric per run (rows) and round (columns), NaN where a run has no value."""
    precision: float | None
    recall: float | None
    lifespan: np.ndarray | None = None
    """Rounds until ASR < 0.5 after ``threat.end_round`` per run (``final["asr_lifespan"]``),
    for runs whose adversary stopped early; NaN for a run without it."""
    censored: int = 0
    """How many runs' ASR never fell below 0.5 (their lifespan is a lower bound)."""

    @property
    def n_seeds(self) -> int:
        """Number of replicates."""
        return len(self.runs)

    @property
    def mean(self) -> float:
        """Mean final metric over seeds."""
        return mean_std(self.values)[0]

    @property
    def std(self) -> float:
        """Standard deviation of the final metric over seeds (``ddof=1``)."""
        return mean_std(self.values)[1]


def make_cell(runs: tuple[Run, ...], metric: str) -> Cell:
    """The :class:`Cell` of ``runs``, all of one configuration."""
    first = runs[0]
    backdoor = any("asr" in row for run in runs for row in run.rounds)
    curve = np.full((len(runs), max(len(run.rounds) for run in runs)), math.nan)
    for i, run in enumerate(runs):
        for j, row in enumerate(run.rounds):
            curve[i, j] = math.nan if row.get(metric) is None else row[metric]
    return Cell(
        dataset=first.dataset,
        variant=first.variant,
        defense=first.defense,
        attack=first.attack,
        num_malicious=first.num_malicious,
        runs=runs,
        values=np.array([_last(run, metric) for run in runs]),
        asr=np.array([_last(run, "asr") for run in runs]) if backdoor else None,
        curve=curve,
        precision=_pooled(runs, "precision"),
        recall=_pooled(runs, "recall"),
        lifespan=_lifespans(runs),
        censored=sum(bool((run.final or {}).get("asr_lifespan_censored")) for run in runs),
    )


def _lifespans(runs: tuple[Run, ...]) -> np.ndarray | None:
    """``final["asr_lifespan"]`` per run, or ``None`` when no run has one."""
    values = [(run.final or {}).get("asr_lifespan") for run in runs]
    if all(v is None for v in values):
        return None
    return np.array([math.nan if v is None else float(v) for v in values])


def attack_label(attack: str) -> str:
    """An attack's column or axis label (``none`` reads "no attack")."""
    return "no attack" if attack == NO_ATTACK else attack


def _defense_order(name: str) -> tuple[bool, str]:
    return name != REFERENCE_DEFENSE, name


def attack_order(name: str) -> tuple[bool, str]:
    """Sort key of attacks: no attack first, then by name."""
    return name != NO_ATTACK, name


class Summary:
    """Cells of the complete runs of a study, with the report's derived columns."""

    def __init__(self, runs: list[Run], metric: str = "accuracy") -> None:
        self.metric = metric
        self.higher_is_better = metric != "loss"
        groups: dict[tuple[str, str, str, str, int], list[Run]] = defaultdict(list)
        for run in runs:
            if run.complete and run.rounds:
                key = (run.dataset, run.variant, run.defense, run.attack, run.num_malicious)
                groups[key].append(run)
        self.cells = {key: make_cell(tuple(groups[key]), metric) for key in sorted(groups)}

    def tables(self) -> list[TableKey]:
        """Every ``(dataset, variant, num_malicious)`` with at least one cell."""
        return sorted({(c.dataset, c.variant, c.num_malicious) for c in self.cells.values()})

    def malicious_counts(self) -> list[int]:
        """The distinct numbers of malicious clients of the cells, ascending."""
        return sorted({c.num_malicious for c in self.cells.values()})

    def no_attack_f(self, table: TableKey) -> int | None:
        """The number of malicious clients whose no-attack runs serve ``table``."""
        dataset, variant, f = table
        fs = {k[4] for k in self.cells if k[:2] == (dataset, variant) and k[3] == NO_ATTACK}
        return f if f in fs else min(fs, default=None)

    def cell(self, table: TableKey, defense: str, attack: str) -> Cell | None:
        """The cell of ``defense`` × ``attack`` in ``table`` (no attack: see
        :meth:`no_attack_f`)."""
        dataset, variant, f = table
        num_malicious = self.no_attack_f(table) if attack == NO_ATTACK else f
        if num_malicious is None:  # no no-attack runs in the dataset and variant
            return None
        return self.cells.get((dataset, variant, defense, attack, num_malicious))

    def defenses(self, table: TableKey) -> list[str]:
        """Defenses in ``table``, FedAvg first."""
        names = {c.defense for k, c in self.cells.items() if (k[0], k[1], k[4]) == table}
        return sorted(names, key=_defense_order)

    def attacks(self, table: TableKey) -> list[str]:
        """Attacks in ``table``, no attack first (present whenever :meth:`no_attack_f` is)."""
        names = {c.attack for k, c in self.cells.items() if (k[0], k[1], k[4]) == table}
        if self.no_attack_f(table) is not None:
            names.add(NO_ATTACK)
        return sorted(names, key=attack_order)

    def worst_case(self, table: TableKey, defense: str) -> Cell | None:
        """The attacked cell of ``defense`` with the worst mean metric."""
        cells = [self.cell(table, defense, a) for a in self.attacks(table) if a != NO_ATTACK]
        found = [c for c in cells if c is not None and not math.isnan(c.mean)]
        if not found:
            return None
        pick = min if self.higher_is_better else max
        return pick(found, key=lambda c: c.mean)

    def benign_cost(self, table: TableKey, defense: str) -> float | None:
        """How much worse ``defense`` is than FedAvg without attack (positive = a cost)."""
        reference = self.cell(table, REFERENCE_DEFENSE, NO_ATTACK)
        own = self.cell(table, defense, NO_ATTACK)
        if reference is None or own is None:
            return None
        if self.higher_is_better:
            return reference.mean - own.mean
        return own.mean - reference.mean

    def rows(self) -> list[dict[str, Any]]:
        """One tidy row per cell, in table order, keyed by :data:`CSV_COLUMNS`
        (None = undefined)."""
        rows = []
        for table in self.tables():
            dataset, variant, f = table
            for defense in self.defenses(table):
                worst = self.worst_case(table, defense)
                for attack in self.attacks(table):
                    cell = self.cells.get((dataset, variant, defense, attack, f))
                    if cell is None:
                        continue
                    asr = mean_std(cell.asr) if cell.asr is not None else (None, None)
                    values = (
                        dataset, defense, attack, f, variant, cell.mean, cell.std, cell.n_seeds,
                        *asr, cell.precision, cell.recall, None if worst is None else worst.mean,
                        self.benign_cost(table, defense),
                    )  # fmt: skip
                    rows.append(dict(zip(CSV_COLUMNS, values, strict=True)))
        return rows
