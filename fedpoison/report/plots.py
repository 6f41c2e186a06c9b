"""The report's PNG figures, drawn with matplotlib's Agg renderer (no pyplot, no GUI).

- ``accuracy_vs_round.png``: one line per configuration, mean over seeds with its 95 % Student-t
  interval as a band (:func:`~fedpoison.report.summary.mean_t_interval`; no band for one seed);
  one panel per attack when there are more than 12 configurations.
- ``heatmap.png``: defense × attack mean final metric with the values written in the cells,
  one panel per table (the largest number of malicious clients only when they are too many).
- ``accuracy_vs_malicious.png``: mean final metric vs number of malicious clients, one line per
  (defense, attack), error bars = std over seeds; drawn only when the study has more than one
  number of malicious clients (:func:`figures`).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypedDict

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fedpoison.report.summary import (
    Cell,
    Summary,
    TableKey,
    attack_label,
    attack_order,
    malicious_label,
    mean_t_interval,
)

MAX_LINES = 12
MAX_PANELS = 6
_LABEL_FIELDS = ("dataset", "variant", "defense", "attack", "num_malicious")
_STYLES = ("-", "--", ":", "-.")


def _label_fields(cells: Iterable[Cell], skip: tuple[str, ...] = ()) -> list[str]:
    """The identifying fields that differ between ``cells`` (all but ``skip``)."""
    cells = list(cells)
    return [
        field
        for field in _LABEL_FIELDS
        if field not in skip and len({getattr(c, field) for c in cells}) > 1
    ]


def _label(cell: Cell, fields: list[str]) -> str:
    parts = [
        malicious_label(cell.num_malicious) if f == "num_malicious" else getattr(cell, f)
        for f in fields
    ]
    return " / ".join(str(p) for p in parts) or f"{cell.defense} / {cell.attack}"


class _Style(TypedDict):
    """Keyword arguments of a line's look, for ``plot`` and ``errorbar``."""

    color: tuple[float, float, float, float]
    linestyle: str


def _style(index: int) -> _Style:
    """A distinct colour (tab10) and, past 10 lines, a distinct dash pattern."""
    return {"color": colormaps["tab10"](index % 10), "linestyle": _STYLES[index // 10 % 4]}


def _legend(ax: Axes) -> None:
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)


def accuracy_vs_round(summary: Summary) -> Figure:
    """One line per configuration, banded by its 95 % t-interval over seeds; one panel per
    attack past :data:`MAX_LINES` lines."""
    cells = list(summary.cells.values())
    panels: dict[str, list[Cell]] = defaultdict(list)
    split = len(cells) > MAX_LINES
    for cell in cells:
        panels[cell.attack if split else ""].append(cell)
    fields = _label_fields(cells, skip=("attack",) if split else ())
    fig = Figure(figsize=(9.0, 3.6 * len(panels)), layout="constrained")
    axes = fig.subplots(len(panels), 1, squeeze=False)[:, 0]
    names = sorted(panels, key=attack_order)
    for ax, attack in zip(axes, names, strict=True):
        for index, cell in enumerate(panels[attack]):
            mean, half = mean_t_interval(cell.curve)
            evaluated = np.isfinite(mean)  # rounds skipped by eval_every > 1 are NaN
            rounds = np.arange(1, len(mean) + 1)[evaluated]
            mean, half = mean[evaluated], half[evaluated]
            style = _style(index)
            ax.plot(rounds, mean, label=_label(cell, fields), **style)
            ax.fill_between(rounds, mean - half, mean + half, color=style["color"], alpha=0.2)
        ax.set(xlabel="round", ylabel=summary.metric, title=f"attack: {attack}" if split else "")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        _legend(ax)
    fig.suptitle(f"{summary.metric}: mean and 95 % t-interval over seeds", fontsize="medium")
    return fig


def _heatmap_tables(summary: Summary) -> list[TableKey]:
    """Every table, or the largest number of malicious clients per dataset and variant."""
    tables = summary.tables()
    if len(tables) <= MAX_PANELS:
        return tables
    largest: dict[tuple[str, str], TableKey] = {}
    for table in tables:
        largest[table[:2]] = max(largest.get(table[:2], table), table)
    return sorted(largest.values())


def heatmap(summary: Summary) -> Figure:
    """Defense × attack mean final metric, annotated, one panel per table."""
    tables = _heatmap_tables(summary)
    grids = []
    for table in tables:
        defenses, attacks = summary.defenses(table), summary.attacks(table)
        cells = [[summary.cell(table, d, a) for a in attacks] for d in defenses]
        values = np.array([[math.nan if c is None else c.mean for c in row] for row in cells])
        grids.append((table, defenses, attacks, values))
    finite = np.concatenate([g[3][np.isfinite(g[3])] for g in grids])
    vmin, vmax = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    cols = min(3, len(grids))
    rows = math.ceil(len(grids) / cols)
    width = max(len(g[2]) for g in grids) * 1.1 + 2.5
    height = max(len(g[1]) for g in grids) * 0.5 + 1.8
    fig = Figure(figsize=(width * cols + 1.0, height * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    cmap = colormaps["viridis" if summary.higher_is_better else "viridis_r"]
    for ax, (table, defenses, attacks, values) in zip(axes, grids, strict=False):
        image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        ax.set_xticks(range(len(attacks)), [attack_label(a) for a in attacks])
        ax.set_yticks(range(len(defenses)), defenses)
        ax.tick_params(axis="x", labelrotation=30)
        ax.set_title(", ".join(filter(None, (table[0], table[1], malicious_label(table[2])))))
        for (i, j), value in np.ndenumerate(values):
            dark = np.isfinite(value) and (value - vmin) < 0.5 * (vmax - vmin)
            text = "–" if math.isnan(value) else f"{value:.3f}"
            ax.text(j, i, text, ha="center", va="center", color="white" if dark else "black")
    for ax in axes[len(grids) :]:
        ax.set_axis_off()
    fig.colorbar(image, ax=axes.tolist(), label=f"final {summary.metric}")
    return fig


def accuracy_vs_malicious(summary: Summary) -> Figure:
    """Mean final metric vs number of malicious clients, one line per (defense, attack)."""
    lines: dict[tuple[str, str, str, str], list[Cell]] = defaultdict(list)
    for cell in summary.cells.values():
        lines[(cell.dataset, cell.variant, cell.defense, cell.attack)].append(cell)
    fields = _label_fields(summary.cells.values(), skip=("num_malicious",))
    height = max(4.5, 0.2 * len(lines) + 1.0)  # room for the legend beside the axes
    fig = Figure(figsize=(9.0, height), layout="constrained")
    ax = fig.subplots()
    for index, cells in enumerate(lines.values()):
        cells.sort(key=lambda c: c.num_malicious)
        style = _style(index)
        ax.errorbar(
            [c.num_malicious for c in cells],
            [c.mean for c in cells],
            yerr=[c.std for c in cells],
            label=_label(cells[0], fields),
            marker="o",
            capsize=3,
            **style,
        )
    ax.set_xticks(summary.malicious_counts())
    ax.set(xlabel="malicious clients", ylabel=f"final {summary.metric}")
    ax.grid(alpha=0.3)
    _legend(ax)
    return fig


Draw = Callable[[Summary], Figure]
BY_MALICIOUS = "accuracy_vs_malicious.png"
FIGURES: dict[str, tuple[str, Draw]] = {
    "accuracy_vs_round.png": (
        "Metric per round (mean, 95 % t-interval over seeds)",
        accuracy_vs_round,
    ),
    "heatmap.png": ("Mean final metric, defense × attack", heatmap),
    BY_MALICIOUS: ("Mean final metric vs malicious clients (± std)", accuracy_vs_malicious),
}
"""File name → (title, drawing function)."""


def figures(summary: Summary) -> dict[str, tuple[str, Draw]]:
    """The entries of :data:`FIGURES` that ``summary`` calls for: all but :data:`BY_MALICIOUS`
    when its cells have a single number of malicious clients (the plot would be one column of
    dots)."""
    if len(summary.malicious_counts()) > 1:
        return FIGURES
    return {name: entry for name, entry in FIGURES.items() if name != BY_MALICIOUS}


def write_plots(summary: Summary, out: Path) -> list[Path]:
    """Every figure of :func:`figures` into ``out``; the paths written."""
    paths = []
    for name, (_, draw) in figures(summary).items():
        draw(summary).savefig(out / name, dpi=110)
        paths.append(out / name)
    return paths
