"""The ``fedpoison`` command as a user runs it: outputs, accuracy, determinism, clear errors."""

from __future__ import annotations

import json

import pytest
from fedpoison_testing import fedpoison

FAST = ["progress=false"]


@pytest.mark.slow
def test_fedavg_reaches_90_percent_and_is_deterministic(tmp_path):
    args = ["attack=none", "defense=fedavg", "num_rounds=20", *FAST]
    first = fedpoison(*args, f"hydra.run.dir={tmp_path / 'a'}")
    assert first.returncode == 0, first.stderr
    assert "final accuracy" in first.stdout
    second = fedpoison(*args, f"hydra.run.dir={tmp_path / 'b'}")
    assert second.returncode == 0, second.stderr
    a = json.loads((tmp_path / "a" / "results.json").read_text())
    b = json.loads((tmp_path / "b" / "results.json").read_text())
    assert a["final"]["accuracy"] >= 0.90
    strip = lambda rows: [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows]  # noqa: E731
    assert strip(a["rounds"]) == strip(b["rounds"])
    assert (tmp_path / "a" / "metrics.csv").exists()


def test_default_main_job_runs_from_any_directory(tmp_path):
    out = fedpoison("num_rounds=2", *FAST, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "final accuracy" in out.stdout
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["config"]["attack"]["name"] == "alie"
    assert len(results["malicious_clients"]) == 4


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("dataset=nope", "dataset"),
        ("federation.num_clients=-3", "federation.num_clients"),
        ("federation.clients_per_round=50", "federation.clients_per_round"),
        ("training.lr=abc", "training.lr"),
        ("defense=krum threat.num_malicious=9", "krum"),
        ("attack=ipm threat.knowledge=own", "threat.knowledge"),
        ("num_rounds=0", "num_rounds"),
    ],
)
def test_bad_config_fails_before_training_with_one_line(tmp_path, override, expected):
    out = fedpoison(*override.split(), *FAST, f"hydra.run.dir={tmp_path}")
    assert out.returncode == 2, (out.stdout, out.stderr)
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, out.stderr
    assert expected in lines[0]
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "results.json").exists()


def test_sweep_job_directory_suffix_is_readable_or_a_stable_hash():
    from fedpoison.cli import sweep_job_suffix

    assert sweep_job_suffix("") == ""
    assert sweep_job_suffix("num_rounds=50,training.lr=0.1") == "-num_rounds=50,training.lr=0.1"
    unsafe = "dataset.root=/data/mnist"
    assert sweep_job_suffix(unsafe) == sweep_job_suffix(unsafe)
    assert len(sweep_job_suffix(unsafe)) == 11 and "/" not in sweep_job_suffix(unsafe)
    assert sweep_job_suffix("x=" + "1" * 200) != sweep_job_suffix("x=" + "1" * 199)
