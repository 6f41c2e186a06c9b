"""The report's tables: tidy ``report.csv`` and the human-readable ``report.md``."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from fedpoison.report.collect import NO_ATTACK, Study
from fedpoison.report.missing import markdown_section
from fedpoison.report.plots import BY_MALICIOUS, figures
from fedpoison.report.summary import (
    CSV_COLUMNS,
    REFERENCE_DEFENSE,
    Cell,
    Summary,
    TableKey,
    attack_label,
    malicious_label,
    mean_std,
)

MISSING = "–"


def _csv_value(value: object) -> object:
    """Empty for undefined, floats to 12 significant digits (no binary noise)."""
    if value is None:
        return ""
    return f"{value:.12g}" if isinstance(value, float) else value


def write_csv(summary: Summary, path: Path) -> None:
    """One row per (dataset, defense, attack, num_malicious, variant); empty where undefined."""
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in summary.rows():
            writer.writerow({k: _csv_value(v) for k, v in row.items()})


def _counts(values: Iterable[object]) -> str:
    """``a`` when all agree, else ``a (3), b (1)``; missing values as ``unknown``."""
    counts = Counter("unknown" if v is None else str(v) for v in values)
    if len(counts) == 1:
        return next(iter(counts))
    return ", ".join(f"{value} ({n})" for value, n in counts.most_common())


def _header(study: Study, summary: Summary) -> list[str]:
    complete = sum(run.complete for run in study.runs)
    provenance = [run.provenance for run in study.runs]
    commits = (
        p.get("git_commit")
        and str(p["git_commit"])[:12] + (" + uncommitted changes" if p.get("git_dirty") else "")
        for p in provenance
    )
    better = "higher" if summary.higher_is_better else "lower"
    cost = (
        f"{REFERENCE_DEFENSE} − defense"
        if summary.higher_is_better
        else f"defense − {REFERENCE_DEFENSE}"
    )
    return [
        "# fedpoison study report",
        "",
        f"Read {len(study.runs)} runs ({complete} complete, {len(study.runs) - complete} not) "
        f"from `{study.root}`.",
        "",
        *(
            f"- {name}: {_counts(p.get(name) for p in provenance)}"
            for name in ("fedpoison", "flwr", "torch")
        ),
        f"- engines: {_counts(p.get('engine') for p in provenance)}",
        f"- git commits: {_counts(commits)}",
        "",
        f"Cells: final {summary.metric} mean ± std over seeds (ddof=1; the mean alone when n = 1), "
        "n = seeds; backdoor attacks add the attack success rate (ASR). Worst case: the attack "
        f"with the worst mean ({better} is better). Benign cost: the defense's no-attack "
        f"{summary.metric} against {REFERENCE_DEFENSE}'s ({cost}; positive = the defense costs "
        "without attack). Complete runs only.",
        "",
    ]


def table_title(summary: Summary, table: TableKey) -> str:
    """What sets ``table`` apart from the study's other tables (``Results`` when alone)."""
    dataset, variant, malicious = table
    tables = summary.tables()
    parts = [
        dataset if len({t[0] for t in tables}) > 1 else "",
        variant,
        malicious_label(malicious) if len({t[2] for t in tables}) > 1 else "",
    ]
    return ", ".join(filter(None, parts)) or "Results"


def _mean_std_text(mean: float, std: float, n: int) -> str:
    """``mean ± std``, or the mean alone for one seed (no spread to show)."""
    return f"{mean:.4f}" if n == 1 else f"{mean:.4f} ± {std:.4f}"


def _cell_text(cell: Cell | None) -> str:
    """``0.9100 ± 0.0141 (n=2)``, ``0.8900 (n=1), ASR 0.9500``; ``–`` without runs."""
    if cell is None:
        return MISSING
    text = f"{_mean_std_text(cell.mean, cell.std, cell.n_seeds)} (n={cell.n_seeds})"
    if cell.asr is not None:
        text += f", ASR {_mean_std_text(*mean_std(cell.asr), cell.n_seeds)}"
    return text


def _rate(value: float | None) -> str:
    return MISSING if value is None else f"{value:.4f}"


def markdown_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(summary: Summary, table: TableKey) -> list[str]:
    attacks = summary.attacks(table)
    names = [attack_label(a) for a in attacks]
    lines = [
        markdown_row(["defense", *names, "worst case", "benign cost"]),
        markdown_row(["---"] * (len(names) + 3)),
    ]
    for defense in summary.defenses(table):
        worst = summary.worst_case(table, defense)
        cost = summary.benign_cost(table, defense)
        lines.append(
            markdown_row(
                [
                    defense,
                    *(_cell_text(summary.cell(table, defense, a)) for a in attacks),
                    MISSING if worst is None else f"{worst.mean:.4f} ({worst.attack})",
                    MISSING if cost is None else f"{cost:+.4f}",
                ]
            )
        )
    no_attack_f = summary.no_attack_f(table)
    if no_attack_f is not None and no_attack_f != table[2]:
        lines += ["", f"No-attack column: the runs with {malicious_label(no_attack_f)}."]
    return lines


def _detection(summary: Summary, table: TableKey) -> list[str]:
    attacks = [a for a in summary.attacks(table) if a != NO_ATTACK]
    if not attacks:
        return []
    lines = [
        "Detection (precision / recall of the rejected clients, mean over rounds and seeds "
        "where defined):",
        "",
        markdown_row(["defense", *attacks]),
        markdown_row(["---"] * (len(attacks) + 1)),
    ]
    for defense in summary.defenses(table):
        cells = [summary.cell(table, defense, a) for a in attacks]
        texts = [
            MISSING if c is None else f"{_rate(c.precision)} / {_rate(c.recall)}" for c in cells
        ]
        lines.append(markdown_row([defense, *texts]))
    return lines


def _durability(summary: Summary, table: TableKey) -> list[str]:
    """The "Backdoor ASR and lifespan" lines of ``table``: final ASR and the rounds until the
    ASR fell below 0.5 after ``threat.end_round`` (``≥`` where a run's never did), for the
    attacked cells whose runs stopped the adversary early; none without such runs."""
    cells = [
        (defense, attack, summary.cell(table, defense, attack))
        for defense in summary.defenses(table)
        for attack in summary.attacks(table)
        if attack != NO_ATTACK
    ]
    found = [(d, a, c) for d, a, c in cells if c is not None and c.lifespan is not None]
    if not found:
        return []
    lines = [
        "Backdoor ASR and lifespan (rounds after `threat.end_round` until ASR < 0.5; "
        "`≥`: some run's ASR never fell below 0.5, so its lifespan is a lower bound):",
        "",
        markdown_row(["defense", "attack", "final ASR", "lifespan (rounds)"]),
        markdown_row(["---"] * 4),
    ]
    for defense, attack, cell in found:
        assert cell.lifespan is not None
        asr = MISSING if cell.asr is None else _mean_std_text(*mean_std(cell.asr), cell.n_seeds)
        life = _mean_std_text(*mean_std(cell.lifespan), cell.n_seeds)
        lines.append(markdown_row([defense, attack, asr, ("≥ " if cell.censored else "") + life]))
    return lines


def _plots(summary: Summary) -> list[str]:
    """The figure links of the "Plots" section, what the bands show, and why a figure of
    :data:`~fedpoison.report.plots.FIGURES` is left out."""
    drawn = figures(summary)
    lines = [f"![{title}]({name})" for name, (title, _) in drawn.items()]
    lines += [
        "",
        "Bands: 95 % t-interval over seeds (mean ± t·s/√n, t the 0.975 quantile of Student's t "
        "with n − 1 degrees of freedom; none for n = 1).",
    ]
    if BY_MALICIOUS not in drawn:
        (count,) = summary.malicious_counts()
        lines.append(
            "No plot against the number of malicious clients: every complete run has "
            f"{malicious_label(count)}."
        )
    return lines


def markdown(study: Study, summary: Summary, extra: list[str] | None = None) -> str:
    """The whole ``report.md``; ``extra`` lines (e.g. a comparison with published numbers) go
    after the tables."""
    lines = _header(study, summary)
    for table in summary.tables():
        lines += [f"## {table_title(summary, table)}", "", *_table(summary, table), ""]
        detection = _detection(summary, table)
        lines += [*detection, ""] if detection else []
        durability = _durability(summary, table)
        lines += [*durability, ""] if durability else []
    lines += extra or []
    if not summary.cells:
        lines += ["No complete runs: no tables or plots.", ""]
    else:
        lines += ["## Plots", "", *_plots(summary), ""]
    lines += markdown_section(study)
    return "\n".join(lines)
