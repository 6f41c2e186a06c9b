"""``fedpoison-partitions``: table, heat map, overrides and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedpoison.partitions_cli import main


def test_fang_on_digits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "heatmap.png"
    argv = [
        "--dataset",
        "digits",
        "--partition",
        "fang",
        "--q",
        "0.5",
        "--num-clients",
        "20",
        "--seed",
        "0",
    ]
    assert main([*argv, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].startswith("digits, fang {'q': 0.5}, 20 clients, seed 0")
    assert lines[1].split() == ["client", *map(str, range(10)), "total", "TV"]
    assert [ln.split()[0] for ln in lines[2:22]] == [str(k) for k in range(20)]
    assert lines[22].split()[0] == "all" and lines[22].split()[-2] == "1437"
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(argv) == 0  # same seed, same table
    assert capsys.readouterr().out.splitlines()[:23] == lines[:23]


def test_override_forms_and_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--partition", "shards", "--shards-per-client=1", "--num-clients", "10"]) == 0
    assert "shards {'shards_per_client': 1}, 10 clients" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--partition", "fang", "--alpha", "0.1"], "no --alpha; it takes: --q"),
        (["--partition", "iid", "--q", "0.1"], "takes: nothing"),
        (["--partition", "nope"], "unknown partition 'nope'; choose from .*fang"),
        (["--dataset", "nope"], "unknown dataset 'nope'"),
        (["--partition", "fang", "--q"], "--q needs a value"),
        (["--partition", "fang", "stray"], "unexpected argument 'stray'"),
    ],
)
def test_errors(argv: list[str], match: str) -> None:
    with pytest.raises(SystemExit, match=match):
        main(argv)
