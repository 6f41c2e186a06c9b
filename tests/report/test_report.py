"""``fedpoison-report`` on a hand-made study: numbers, tables, missing runs, plots, exit codes."""

from __future__ import annotations

import csv
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

from fedpoison.report import main


def sd(*values: float) -> float:
    """Sample standard deviation, by hand."""
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


# (defense, attack) → (mean, std, n_seeds) of the fixture's complete runs (see write_grid).
EXPECTED = {
    ("fedavg", "none"): (0.91, sd(0.90, 0.92), 2),
    ("fedavg", "alie"): (0.45, sd(0.40, 0.50), 2),
    ("fedavg", "backdoor"): (0.89, 0.0, 1),
    ("trimmed_mean", "none"): (0.885, sd(0.88, 0.89), 2),
    ("trimmed_mean", "alie"): (0.82, sd(0.80, 0.84), 2),
    ("trimmed_mean", "backdoor"): (0.87, 0.0, 1),
}


@pytest.fixture(scope="module")
def report(study: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of the fixture study, written once into a separate directory."""
    out = tmp_path_factory.mktemp("report")
    assert main([str(study), "--out", str(out)]) == 0
    return out


def md_table(text: str, first_header: str, after: str = "") -> list[list[str]]:
    """Rows (header included) of the first markdown table whose header starts with
    ``first_header``, searched from the first occurrence of ``after``."""
    lines = text[text.index(after) :].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {first_header} |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        if not line.startswith("| ---"):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
    return rows


def test_csv_has_one_tidy_row_per_configuration_with_hand_computed_numbers(report):
    with (report / "report.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == [
        "dataset", "defense", "attack", "num_malicious", "variant", "mean", "std", "n_seeds",
        "asr_mean", "asr_std", "precision", "recall", "worst_case", "benign_cost",
    ]  # fmt: skip
    by_key = {(r["defense"], r["attack"]): r for r in rows}
    assert set(by_key) == set(EXPECTED)
    for key, (mean, std, n) in EXPECTED.items():
        row = by_key[key]
        assert (row["dataset"], row["num_malicious"], row["variant"]) == ("digits", "4", "")
        assert float(row["mean"]) == pytest.approx(mean)
        assert float(row["std"]) == pytest.approx(std)
        assert int(row["n_seeds"]) == n
    assert float(by_key["fedavg", "backdoor"]["asr_mean"]) == pytest.approx(0.95)
    assert float(by_key["trimmed_mean", "backdoor"]["asr_mean"]) == pytest.approx(0.30)
    assert float(by_key["trimmed_mean", "backdoor"]["asr_std"]) == 0.0
    assert by_key["fedavg", "alie"]["asr_mean"] == ""
    # pooled over rounds and seeds where defined: (1.0 + 0.5 + 0.5) / 3 and (0.5·2 + 0.25·4) / 6
    assert float(by_key["trimmed_mean", "alie"]["precision"]) == pytest.approx(2 / 3)
    assert float(by_key["trimmed_mean", "alie"]["recall"]) == pytest.approx(1 / 3)
    assert by_key["fedavg", "alie"]["precision"] == ""
    for attack in ("none", "alie", "backdoor"):
        assert float(by_key["fedavg", attack]["worst_case"]) == pytest.approx(0.45)
        assert float(by_key["trimmed_mean", attack]["worst_case"]) == pytest.approx(0.82)
        assert float(by_key["fedavg", attack]["benign_cost"]) == pytest.approx(0.0)
        assert float(by_key["trimmed_mean", attack]["benign_cost"]) == pytest.approx(0.025)


def test_markdown_header_counts_runs_and_summarises_provenance(report, study):
    text = (report / "report.md").read_text()
    assert text.startswith("# fedpoison study report")
    assert f"Read 11 runs (10 complete, 1 not) from `{study}`" in text
    for line in ("- fedpoison: 0.1.0", "- flwr: 1.42.0", "- torch: 2.6.0", "- engines: inline",
                 "- git commits: 0123456789ab"):  # fmt: skip
        assert line in text


def test_markdown_header_marks_runs_of_uncommitted_code(tmp_path, run_writer):
    run_writer(tmp_path, defense="fedavg", attack="none", seed=0, accuracy=0.9)
    run_writer(tmp_path, defense="fedavg", attack="none", seed=1, accuracy=0.9, dirty=True)
    assert main([str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert "- git commits: 0123456789ab (1), 0123456789ab + uncommitted changes (1)" in text


def test_markdown_accuracy_table(report):
    rows = md_table((report / "report.md").read_text(), "defense")
    assert rows[0] == ["defense", "no attack", "alie", "backdoor", "worst case", "benign cost"]
    table = {row[0]: row[1:] for row in rows[1:]}
    assert list(table) == ["fedavg", "trimmed_mean"]
    assert table["fedavg"] == [
        f"0.9100 ± {sd(0.90, 0.92):.4f} (n=2)",
        f"0.4500 ± {sd(0.40, 0.50):.4f} (n=2)",
        "0.8900 (n=1), ASR 0.9500",  # one seed: the mean alone, no ± 0
        "0.4500 (alie)",
        "+0.0000",
    ]
    assert table["trimmed_mean"][0] == f"0.8850 ± {sd(0.88, 0.89):.4f} (n=2)"
    assert table["trimmed_mean"][2] == "0.8700 (n=1), ASR 0.3000"
    assert table["trimmed_mean"][3:] == ["0.8200 (alie)", "+0.0250"]


def test_markdown_detection_table(report):
    rows = md_table((report / "report.md").read_text(), "defense", after="Detection")
    assert rows == [
        ["defense", "alie", "backdoor"],
        ["fedavg", "– / –", "– / –"],
        ["trimmed_mean", "0.6667 / 0.3333", "– / –"],
    ]


def test_missing_section_lists_unfinished_never_started_and_grid_holes(report):
    text = (report / "report.md").read_text()
    section = text[text.index("## Missing or failed runs") :]
    assert "- `trimmed_mean-backdoor-f4-seed1`: running, 1 of 3 rounds" in section
    assert "- `trimmed_mean-alie-f4-seed2` (defense=trimmed_mean attack=alie seed=2)" in section
    holes = [line for line in section.splitlines() if line.startswith("- defense=")]
    assert holes == [
        "- defense=fedavg attack=backdoor threat.num_malicious=4 seed=1",
        "- defense=trimmed_mean attack=backdoor threat.num_malicious=4 seed=1"
        " — unfinished: `trimmed_mean-backdoor-f4-seed1`",
    ]


@pytest.mark.parametrize("name", ["accuracy_vs_round.png", "heatmap.png"])
def test_plots_are_valid_pngs(report, name):
    data = (report / name).read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) > 10_000


def test_plots_section_names_the_t_interval(report):
    text = (report / "report.md").read_text()
    section = text[text.index("## Plots") : text.index("## Missing")]
    assert (
        "![Metric per round (mean, 95 % t-interval over seeds)](accuracy_vs_round.png)" in section
    )
    assert "Bands: 95 % t-interval over seeds (mean ± t·s/√n, t the 0.975 quantile" in section
    assert "1.96" not in text


def test_one_number_of_malicious_clients_draws_no_plot_against_it(report, capsys, study):
    assert not (report / "accuracy_vs_malicious.png").exists()
    text = (report / "report.md").read_text()
    assert "accuracy_vs_malicious" not in text
    assert (
        "No plot against the number of malicious clients: every complete run has 4 malicious "
        "clients." in text
    )
    assert main([str(study), "--out", str(report)]) == 0
    assert capsys.readouterr().out.endswith(
        f"wrote report.csv, report.md, accuracy_vs_round.png, heatmap.png to {report}\n"
    )


def test_one_table_per_number_of_malicious_clients(tmp_path, run_writer):
    for seed in (0, 1):
        for defense in ("fedavg", "trimmed_mean"):
            run_writer(tmp_path, defense=defense, attack="none", seed=seed, f=0, accuracy=0.9)
            for f in (2, 4):
                accuracy = 0.8 - 0.1 * f + 0.01 * seed
                run_writer(
                    tmp_path, defense=defense, attack="alie", seed=seed, f=f, accuracy=accuracy
                )
    assert main([str(tmp_path)]) == 0
    text = (tmp_path / "report.md").read_text()
    assert [line for line in text.splitlines() if line.endswith(" malicious clients")] == [
        "## 0 malicious clients", "## 2 malicious clients", "## 4 malicious clients",
    ]  # fmt: skip
    f4 = md_table(text, "defense", after="## 4 malicious clients")
    assert f4[0] == ["defense", "no attack", "alie", "worst case", "benign cost"]
    assert f4[1] == [
        "fedavg",
        "0.9000 ± 0.0000 (n=2)",
        "0.4050 ± 0.0071 (n=2)",
        "0.4050 (alie)",
        "+0.0000",
    ]
    assert "No-attack column: the runs with 0 malicious clients." in text
    assert not re.search(r"\bf ?=", text)  # the README's f is the rule's assumed count
    assert "![Mean final metric vs malicious clients (± std)](accuracy_vs_malicious.png)" in text
    with (tmp_path / "report.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 6
    assert (tmp_path / "accuracy_vs_malicious.png").read_bytes().startswith(b"\x89PNG")


def test_complete_study_reports_no_missing_runs(tmp_path, run_writer):
    run_writer(tmp_path, defense="fedavg", attack="none", seed=0, accuracy=0.9)
    assert main([str(tmp_path), "--metric", "loss"]) == 0
    text = (tmp_path / "report.md").read_text()
    assert text.endswith("## Missing or failed runs\n\nnone\n")
    assert "| fedavg | 0.1000 (n=1) | – | +0.0000 |" in text


@pytest.mark.parametrize("exists", [True, False])
def test_exit_code_2_and_one_line_without_results(tmp_path, capsys, exists):
    target = tmp_path / "study"
    if exists:
        (target / "job" / ".hydra").mkdir(parents=True)
    assert main([str(target)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("fedpoison-report: error:") and err.count("\n") == 1
    assert str(target) in err
    assert not (target / "report.md").exists()


def test_console_entry_point_exit_code_and_no_heavy_imports(tmp_path):
    code = (
        "import sys; from fedpoison.report import main; "
        "assert not {'torch', 'flwr', 'ray'} & set(sys.modules), sys.modules.keys(); "
        "raise SystemExit(main())"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr == f"fedpoison-report: error: no results.json under {tmp_path}\n"
