"""``fedpoison-report --reference``: our error rates next to published ones, differences listed."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedpoison.report import main
from fedpoison.report.reference import load_reference

# The fixture study (conftest.write_grid): fedavg none 0.90/0.92, trimmed_mean alie 0.80/0.84,
# fedavg backdoor 0.89 with ASR 0.95 (seed 0 only).
PUBLISHED = """\
# Some paper, Table 1.
defense,attack,error,asr
fedavg,none,0.10,
trimmed_mean,alie,0.10,
fedavg,backdoor,0.02,0.80
krum,none,0.91,
"""


def _report(study: Path, tmp_path: Path, text: str, *extra: str) -> tuple[int, str]:
    ref = tmp_path / "published.csv"
    ref.write_text(text)
    code = main([str(study), "--out", str(tmp_path / "out"), "--reference", str(ref), *extra])
    md = tmp_path / "out" / "report.md"
    return code, md.read_text() if md.exists() else ""


def _row(text: str, defense: str) -> list[str]:
    section = text[text.index("## Against published numbers") :]
    line = next(line for line in section.splitlines() if line.startswith(f"| {defense} |"))
    return [cell.strip() for cell in line.strip("|").split("|")]


def test_error_rates_are_one_minus_accuracy_and_differences_beyond_tolerance_are_listed(
    study, tmp_path
):
    code, text = _report(study, tmp_path, PUBLISHED)
    assert code == 0
    assert "> Some paper, Table 1." in text
    header = _row(text, "defense")
    fedavg = dict(zip(header, _row(text, "fedavg"), strict=True))
    assert fedavg["no attack"] == "0.090 / 0.10 (-0.010)"  # 1 − mean(0.90, 0.92)
    assert fedavg["backdoor"] == "**0.110 / 0.02 (+0.090)**, **ASR 0.950 / 0.80 (+0.150)**"
    assert fedavg["alie"] == "0.550 / –"  # not published: shown, not compared
    trimmed = dict(zip(header, _row(text, "trimmed_mean"), strict=True))
    assert trimmed["alie"] == "**0.180 / 0.10 (+0.080)**"
    krum = dict(zip(header, _row(text, "krum"), strict=True))  # published only
    assert krum["no attack"] == "– / 0.91"
    listed = text[text.index("Differences larger than 0.05 (3):") :]
    for item in (
        "fedavg × backdoor: error 0.110 / 0.02 (+0.090)",
        "fedavg × backdoor: ASR 0.950 / 0.80 (+0.150)",
        "trimmed_mean × alie: error 0.180 / 0.10 (+0.080)",
    ):
        assert f"- {item}" in listed


def test_tolerance_decides_what_is_listed(study, tmp_path):
    code, text = _report(study, tmp_path, PUBLISHED, "--tolerance", "0.2")
    assert code == 0 and "Every compared cell is within 0.2 of the published number." in text
    assert "**" not in text[text.index("## Against published numbers") :]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("defense,attack\nfedavg,none\n", "header must be defense,attack,error[,asr]"),
        ("defense,attack,error,accuracy\nfedavg,none,0.1,0.9\n", "header must be"),
        (
            "defense,attack,error\nfedavg,none,low\n",
            "published.csv:2 (error): 'low' is not a number",
        ),
        (
            "defense,attack,error\nfedavg,none,4\n",
            "published.csv:2 (error): 4.0 is not a rate in [0, 1]",
        ),
        (
            "# c\ndefense,attack,error\nfedavg,none,0.1\nfedavg,none,0.2\n",
            "published.csv:4: fedavg × none appears twice",
        ),
        ("defense,attack,error\nfedavg,none\n", "published.csv:2: 2 fields, the header has 3"),
    ],
)
def test_malformed_reference_exits_2_naming_the_line(study, tmp_path, capsys, text, message):
    code, _ = _report(study, tmp_path, text)
    assert code == 2
    assert message in capsys.readouterr().err


def test_reference_needs_the_accuracy_metric(study, tmp_path, capsys):
    code, _ = _report(study, tmp_path, PUBLISHED, "--metric", "loss")
    assert code == 2 and "--metric accuracy" in capsys.readouterr().err


def test_load_reference_keeps_blank_cells_unreported(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("defense,attack,error,asr\nfedavg,scaling,,1.0\n")
    assert load_reference(path).values == {("fedavg", "scaling"): {"asr": 1.0}}
