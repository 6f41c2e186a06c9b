"""Golden rounds: the per-round numbers of a fixed matrix of runs, bit for bit.

Recorded before the round-pipeline redesign so that refactors can show they change nothing:
every defense × {none, alie, sign_flip, backdoor} on the inline engine, a few on Ray, and
central DP, dropouts with stragglers, FLTrust with its root set, and a resumed run. Timings
and other machine-dependent fields are left out; floats are compared exactly (JSON keeps a
float's repr, which round-trips).

Re-record (only when a change is *meant* to alter results, and say so in the commit):
``FEDPOISON_RECORD_GOLDENS=1 pytest tests/test_goldens.py``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from fedpoison_testing import run_simulation

from fedpoison.config import ConfigError

GOLDEN = Path(__file__).resolve().parent / "goldens" / "rounds.json"
RECORD = os.environ.get("FEDPOISON_RECORD_GOLDENS") == "1"
BASE = ["progress=false", "checkpoint_every=0", "num_rounds=3"]
TIMING = ("train_s", "aggregate_s", "eval_s", "write_s")

# the defenses of the recorded matrix (rules added later are not golden cases)
DEFENSES = [
    "bulyan",
    "centered_clipping",
    "dnc",
    "fedavg",
    "flame",
    "fltrust",
    "foolsgold",
    "geometric_median",
    "krum",
    "median",
    "multi_krum",
    "norm_clipping",
    "trimmed_mean",
]
CASES: dict[str, list[str]] = {
    f"{defense}-{attack}": [f"defense={defense}", f"attack={attack}"]
    for defense in DEFENSES
    for attack in ("none", "alie", "sign_flip", "backdoor")
}
CASES |= {
    "ray-trimmed_mean-alie": [
        "engine=ray",
        "engine.num_workers=2",
        "defense=trimmed_mean",
        "attack=alie",
    ],
    "ray-krum-sign_flip": [
        "engine=ray",
        "engine.num_workers=2",
        "defense=krum",
        "attack=sign_flip",
    ],
    "ray-fltrust-backdoor": [
        "engine=ray",
        "engine.num_workers=2",
        "defense=fltrust",
        "attack=backdoor",
    ],
    # recorded with Opacus' Poisson-sampling RDP, before rdp_wor became the default accountant
    "central_dp-median-alie": [
        "privacy=central",
        "privacy.accountant=rdp",
        "defense=median",
        "attack=alie",
    ],
    "dropouts-stragglers-trimmed_mean": [
        "federation.dropout_rate=0.2",
        "federation.straggler_fraction=0.3",
        "federation.straggler_slowdown=3",
        "federation.deadline=2",
        "defense=trimmed_mean",
        "attack=alie",
        "defense.f=2",
    ],
    "fltrust-root-sign_flip": ["defense=fltrust", "defense.root.size=50", "attack=sign_flip"],
}


def _stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in TIMING} for row in rows]


def _outcome(overrides: list[str], run_dir: Path) -> Any:
    try:
        return _stable(run_simulation([*BASE, *overrides], run_dir)["rounds"])
    except ConfigError as exc:
        return {"config_error": str(exc)}


def _resumed(run_dir: Path) -> Any:
    """Four rounds with a checkpoint after round 2, stopped there and resumed to 4."""
    common = ["progress=false", "checkpoint_every=2", "defense=krum", "attack=alie"]
    run_simulation([*common, "num_rounds=2"], run_dir)
    return _stable(run_simulation([*common, "num_rounds=4", "resume=true"], run_dir)["rounds"])


@pytest.fixture(scope="module")
def golden() -> dict[str, Any]:
    if RECORD:
        return {}
    if not GOLDEN.exists():
        pytest.fail(f"{GOLDEN} is missing: record it with FEDPOISON_RECORD_GOLDENS=1")
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def recorded():
    outcomes: dict[str, Any] = {}
    yield outcomes
    if RECORD:
        old = json.loads(GOLDEN.read_text(encoding="utf-8")) if GOLDEN.exists() else {}
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(
            json.dumps({**old, **outcomes}, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )


def _check(name: str, outcome: Any, golden: dict[str, Any], recorded: dict[str, Any]) -> None:
    if RECORD:
        recorded[name] = outcome
        return
    assert json.loads(json.dumps(outcome)) == golden[name], (
        f"{name}: rounds differ from the golden record"
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in CASES if not n.startswith("ray-")])
def test_golden_rounds(name: str, tmp_path: Path, golden, recorded) -> None:
    _check(name, _outcome(CASES[name], tmp_path / "run"), golden, recorded)


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.parametrize("name", [n for n in CASES if n.startswith("ray-")])
def test_golden_rounds_ray(name: str, tmp_path: Path, golden, recorded) -> None:
    _check(name, _outcome(CASES[name], tmp_path / "run"), golden, recorded)


@pytest.mark.slow
def test_golden_resumed_run(tmp_path: Path, golden, recorded) -> None:
    _check("resumed-krum-alie", _resumed(tmp_path / "run"), golden, recorded)
