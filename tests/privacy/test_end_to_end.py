"""DP runs end to end: ε per round in results.json, reproducible, on every mechanism and engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fedpoison_testing import run_simulation

from fedpoison.privacy.accounting import Release, epsilon

ALIE = [
    "num_rounds=4",
    "progress=false",
    "checkpoint_every=0",
]  # default job: 20 clients, 4 ALIE, trimmed mean


def test_central_dp_around_trimmed_mean_reports_epsilon_per_round(tmp_path: Path) -> None:
    """privacy=central (noise multiplier 1.0) around trimmed mean under ALIE: ε per round is
    the accountant's ε of the releases so far, increasing; runs are reproducible; more noise,
    less ε."""
    overrides = [
        *ALIE,
        "privacy=central",
        "privacy.noise_multiplier=1.0",
        "defense=trimmed_mean",
        "attack=alie",
    ]
    results = run_simulation(overrides, tmp_path / "a")
    eps = [row["epsilon"] for row in results["rounds"]]
    # All 20 clients every round: ε is the default accountant's of r Gaussian releases at z = 1.
    assert eps == [pytest.approx(epsilon(Release(1.0, 20, 20), r, 1e-5)) for r in range(1, 5)]
    assert eps == sorted(eps) and eps[0] < eps[-1]
    assert results["final"]["epsilon"] == eps[-1] and results["final"]["delta"] == 1e-5
    assert all(row["dp_clip_norm"] == 1.0 for row in results["rounds"])
    again = run_simulation(overrides, tmp_path / "b")
    assert [r["loss"] for r in again["rounds"]] == [r["loss"] for r in results["rounds"]]
    quieter = run_simulation([*overrides, "privacy.noise_multiplier=2.0"], tmp_path / "c")
    assert quieter["final"]["epsilon"] < results["final"]["epsilon"]
    plain = run_simulation([*ALIE, "defense=trimmed_mean", "attack=alie"], tmp_path / "d")
    assert "epsilon" not in plain["final"]
    assert [r["loss"] for r in plain["rounds"]] != [
        r["loss"] for r in results["rounds"]
    ]  # the noise acts


def test_adaptive_clipping_moves_the_clip_norm_and_survives_resume(tmp_path: Path) -> None:
    overrides = [
        *ALIE,
        "privacy=central",
        "privacy.target_quantile=0.5",
        "privacy.clip_norm=5.0",
        "federation.clients_per_round=10",
        "privacy.clip_count_stddev=1.0",
        "checkpoint_every=2",
    ]
    full = run_simulation(overrides, tmp_path / "full")
    norms = [row["dp_clip_norm"] for row in full["rounds"]]
    assert norms[0] == 5.0 and norms[-1] < 5.0  # digits MLP updates are far shorter than 5
    assert full["rounds"][0]["epsilon"] == pytest.approx(epsilon(Release(1.0, 10, 20), 1, 1e-5))
    run_simulation([*overrides, "num_rounds=2"], tmp_path / "resumed")
    resumed = run_simulation([*overrides, "resume=true"], tmp_path / "resumed")

    def strip(rows):
        return json.dumps([{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows])

    assert strip(resumed["rounds"]) == strip(full["rounds"])  # (JSON: NaN precision compares equal)


@pytest.mark.parametrize("mechanism", ["local", "dpsgd"])
def test_client_side_mechanisms_run_and_account(mechanism: str, tmp_path: Path) -> None:
    overrides = [
        *ALIE,
        f"privacy={mechanism}",
        "privacy.noise_multiplier=0.5",
        "privacy.delta=1e-3",
    ]
    results = run_simulation(overrides, tmp_path / "a")
    assert results["status"] == "complete"
    eps = [row["epsilon"] for row in results["rounds"]]
    assert eps == sorted(eps) and eps[0] > 0
    again = run_simulation(overrides, tmp_path / "b")
    assert [r["loss"] for r in again["rounds"]] == [r["loss"] for r in results["rounds"]]


@pytest.mark.ray
def test_local_dp_is_identical_on_ray_and_inline(simulate) -> None:  # noqa: ANN001
    common = [
        "privacy=local",
        "privacy.noise_multiplier=0.5",
        "privacy.delta=1e-3",
        "federation.clients_per_round=4",
    ]
    inline = simulate([*common, "engine=inline"], "inline")
    ray = simulate([*common, "engine=ray", "engine.num_workers=2"], "ray")
    assert [(r["accuracy"], r["loss"]) for r in ray["rounds"]] == [
        (r["accuracy"], r["loss"]) for r in inline["rounds"]
    ]
