"""A study as a user runs it: one multirun command, then fedpoison-report, then a resumed re-run."""

from __future__ import annotations

import csv
import json
import statistics
import subprocess
import sys

import pytest

SWEEP = [
    "-m",
    "defense=fedavg,median",
    "attack=none,sign_flip",
    "seed=0,1",
    "federation.num_clients=6",
    "threat.num_malicious=1",
    "num_rounds=2",
    "progress=false",
]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_sweep_report_and_resume(tmp_path):
    study = tmp_path / "study"
    out = _run(["-m", "fedpoison", *SWEEP, f"hydra.sweep.dir={study}"])
    assert out.returncode == 0, out.stderr
    runs = sorted(p.parent for p in study.rglob("results.json"))
    assert len(runs) == 8
    assert {p.name for p in runs} == {  # named by settings: stable whatever the job order
        f"{d}-{a}-f1-seed{s}-federation.num_clients=6,num_rounds=2"
        for d in ("fedavg", "median")
        for a in ("none", "sign_flip")
        for s in (0, 1)
    }
    finals: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        res = json.loads((run / "results.json").read_text())
        assert res["status"] == "complete"
        finals.setdefault((res["choices"]["defense"], res["choices"]["attack"]), []).append(
            res["final"]["accuracy"]
        )

    report = _run(["-c", "from fedpoison.report import main; raise SystemExit(main())", str(study)])
    assert report.returncode == 0, report.stderr
    rows = list(csv.DictReader((study / "report.csv").open()))
    assert {(r["defense"], r["attack"]) for r in rows} == set(finals)
    for row in rows:
        values = finals[row["defense"], row["attack"]]
        assert int(row["n_seeds"]) == 2
        assert float(row["mean"]) == pytest.approx(statistics.mean(values), abs=1e-9)
        assert float(row["std"]) == pytest.approx(statistics.stdev(values), abs=1e-9)
    text = (study / "report.md").read_text()
    assert "| fedavg |" in text and "| median |" in text and "sign_flip" in text
    for png in ("accuracy_vs_round.png", "heatmap.png"):
        assert (study / png).read_bytes()[:4] == b"\x89PNG"
    assert not (study / "accuracy_vs_malicious.png").exists()  # one malicious count: no such plot

    reordered = [
        *SWEEP[:1],
        "defense=median,fedavg",
        "attack=sign_flip,none",
        "seed=1,0",
        *SWEEP[4:],
    ]
    again = _run(["-m", "fedpoison", *reordered, f"hydra.sweep.dir={study}", "resume=true"])
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already complete") == 8


@pytest.mark.slow
def test_tensorboard_logger_writes_events(tmp_path):
    out = _run(
        [
            "-m",
            "fedpoison",
            "num_rounds=2",
            "progress=false",
            "logger=tensorboard",
            f"hydra.run.dir={tmp_path}",
        ]
    )
    assert out.returncode == 0, out.stderr
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


def test_a_failed_job_is_recorded_and_the_sweep_goes_on(tmp_path):
    """One job's round fails (a malformed reply under on_invalid_reply=fail, exit code 3), two
    jobs' configs are impossible (Bulyan with f = 2 of 8, exit code 2): all are reported, the
    other job still runs, and the sweep exits with the worst code."""
    study = tmp_path / "study"
    out = _run(
        [
            "-m",
            "fedpoison",
            "-m",
            "robustness.on_invalid_reply=fail,reject",
            "defense=median,bulyan",
            "attack=malformed",
            "federation.num_clients=8",
            "threat.num_malicious=2",
            "num_rounds=2",
            "progress=false",
            f"hydra.sweep.dir={study}",
        ]
    )
    assert out.returncode == 3, out.stderr
    assert "3 job(s) of the sweep failed" in out.stderr and "bulyan: needs n ≥ 4f+3" in out.stderr
    statuses = {
        p.parent.name.split("-")[0]
        + ":"
        + json.loads(p.read_text())["config"]["robustness"]["on_invalid_reply"]: json.loads(
            p.read_text()
        )
        for p in study.rglob("results.json")
    }
    assert statuses["median:reject"]["status"] == "complete"
    failed = statuses["median:fail"]
    assert failed["status"] == "failed" and "on_invalid_reply=fail" in failed["error"]
    assert not [
        k for k in statuses if k.startswith("bulyan")
    ]  # refused before round 1: no results.json
