"""``fedpoison-report --worst-case``: ByzFL's max-min tuning on a hand-made lr sweep."""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from fedpoison.report import main

# (defense, lr, attack) → final accuracies of seeds 0 and 1
GRID = {
    ("trimmed_mean", 0.1, "alie"): (0.80, 0.84),  # mean 0.82
    ("trimmed_mean", 0.1, "backdoor"): (0.70, 0.72),  # 0.71 ← worst at lr 0.1
    ("trimmed_mean", 0.5, "alie"): (0.60, 0.62),  # 0.61 ← worst at lr 0.5
    ("trimmed_mean", 0.5, "backdoor"): (0.90, 0.90),
    ("fedavg", 0.1, "alie"): (0.40, 0.40),  # 0.40 ← worst at lr 0.1
    ("fedavg", 0.1, "backdoor"): (0.90, 0.90),
    ("fedavg", 0.5, "alie"): (0.50, 0.50),
    ("fedavg", 0.5, "backdoor"): (0.30, 0.30),  # 0.30 ← worst at lr 0.5
    ("fedavg", 0.9, "alie"): (0.99, 0.99),  # no backdoor runs: not eligible
    ("fedavg", 0.1, "none"): (0.95, 0.95),  # shown, never scored
}


Writer = Callable[..., Path]


def _write(
    writer: Writer, root: Path, defense: str, lr: float, attack: str, seed: int, acc: float
) -> Path:
    run_dir = writer(root / f"lr{lr}", defense=defense, attack=attack, seed=seed, accuracy=acc)
    path = run_dir / "results.json"
    data = json.loads(path.read_text())
    data["config"]["training"] = {"lr": lr}
    if (defense, lr, attack) == ("trimmed_mean", 0.5, "alie"):
        data["rounds"][1]["accuracy"] = 0.95  # a peak before the end: ByzFL's best round
    path.write_text(json.dumps(data))
    return run_dir


@pytest.fixture
def sweep(tmp_path: Path, run_writer: Writer) -> Path:
    for (defense, lr, attack), accuracies in GRID.items():
        for seed, acc in enumerate(accuracies):
            _write(run_writer, tmp_path / "study", defense, lr, attack, seed, acc)
    return tmp_path / "study"


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "worst_case.csv").open() as fh:
        return {row["defense"]: row for row in csv.DictReader(fh)}


def test_final_round_picks_the_lr_with_the_best_worst_case(sweep, tmp_path):
    out = tmp_path / "out"
    assert main([str(sweep), "--out", str(out), "--worst-case"]) == 0
    rows = _rows(out)
    # per-attack tuning would give trimmed_mean min(0.82 at lr 0.1, 0.90 at lr 0.5) = 0.82
    assert rows["trimmed_mean"]["chosen"] == "training.lr=0.1"
    assert float(rows["trimmed_mean"]["worst_case"]) == pytest.approx(0.71)
    assert rows["trimmed_mean"]["worst_attack"] == "backdoor"
    assert rows["fedavg"]["chosen"] == "training.lr=0.1"
    assert float(rows["fedavg"]["worst_case"]) == pytest.approx(0.40)
    assert (rows["fedavg"]["choices"], rows["fedavg"]["eligible_choices"]) == ("3", "2")
    text = (out / "report.md").read_text()
    assert "## Worst case after tuning" in text
    assert "| fedavg | training.lr=0.1 | 0.9500 | 0.4000 | 0.9000 | 0.4000 (alie) | 2/3 |" in text


def test_best_round_reads_the_seed_mean_curve_at_its_peak(sweep, tmp_path):
    out = tmp_path / "out"
    assert main([str(sweep), "--out", str(out), "--worst-case", "best"]) == 0
    rows = _rows(out)
    # lr 0.5: alie peaks at 0.95 in round 2, so its worst case is backdoor's 0.90 > 0.71
    assert rows["trimmed_mean"]["chosen"] == "training.lr=0.5"
    assert float(rows["trimmed_mean"]["worst_case"]) == pytest.approx(0.90)


def test_untuned_varying_settings_make_separate_tables(sweep, tmp_path, run_writer):
    for attack in ("alie", "backdoor"):
        for seed in (0, 1):
            run_dir = _write(run_writer, sweep / "alpha", "fedavg", 0.1, attack, seed, 0.1)
            data = json.loads((run_dir / "results.json").read_text())
            data["config"]["partition"] = {"alpha": 0.1}
            (run_dir / "results.json").write_text(json.dumps(data))
    out = tmp_path / "out"
    assert main([str(sweep), "--out", str(out), "--worst-case", "--tune", "training.lr"]) == 0
    with (out / "worst_case.csv").open() as fh:
        rows = {(r["defense"], r["setting"]): r for r in csv.DictReader(fh)}
    assert set(rows) == {
        ("fedavg", "partition.alpha=0.1"),
        ("fedavg", "partition.alpha=<unset>"),
        ("trimmed_mean", "partition.alpha=<unset>"),
    }
    assert float(rows[("fedavg", "partition.alpha=0.1")]["worst_case"]) == pytest.approx(0.1)


def test_a_tune_key_that_does_not_vary_is_refused(sweep, tmp_path, capsys):
    assert main([str(sweep), "--out", str(tmp_path), "--worst-case", "--tune", "seed"]) == 2
    assert "--tune seed: not a setting that varies" in capsys.readouterr().err
    assert main([str(sweep), "--out", str(tmp_path), "--tune", "training.lr"]) == 2
    assert "--tune needs --worst-case" in capsys.readouterr().err
