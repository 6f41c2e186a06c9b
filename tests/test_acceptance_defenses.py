"""Acceptance: every registered defense runs end to end on digits and records detection.

All runs are in-process on the inline engine: 12 clients (so that Bulyan, which needs
``n ≥ 4f + 3 = 11`` for ``f = 2``, runs with the same population as every other rule), 2 of
them malicious running ``sign_flip``, 3 rounds.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from fedpoison_testing import run_simulation
from hydra.utils import get_class

from fedpoison.aggregators import AGGREGATORS
from fedpoison.checkpoint import load_checkpoint
from fedpoison.outputs import read_results

NUM_CLIENTS, NUM_MALICIOUS, NUM_ROUNDS = 12, 2, 3
SMALL = [
    f"federation.num_clients={NUM_CLIENTS}",
    f"threat.num_malicious={NUM_MALICIOUS}",
    f"num_rounds={NUM_ROUNDS}",
    "progress=false",
]
DETECTION_KEYS = (
    "participants",
    "malicious_participants",
    "f",
    "rejected",
    "invalid",
    "tp",
    "fp",
    "fn",
    "tn",
    "precision",
    "recall",
    "fpr",
)


def _run(overrides: list[str], run_dir: Path) -> dict[str, Any]:
    return run_simulation([*SMALL, *overrides], run_dir)


def _per_round(results: dict[str, Any], *keys: str) -> list[tuple[Any, ...]]:
    return [tuple(row[k] for k in keys) for row in results["rounds"]]


def _assert_finite_global_model(results: dict[str, Any], run_dir: Path) -> None:
    """Every round has a finite loss and the final model saved in checkpoint.pt is finite."""
    assert results["status"] == "complete"
    assert [row["round"] for row in results["rounds"]] == list(range(1, NUM_ROUNDS + 1))
    for row in results["rounds"]:
        assert "skipped" not in row, row
        assert math.isfinite(row["loss"]), row
        assert 0.0 <= row["accuracy"] <= 1.0
    checkpoint = load_checkpoint(run_dir)  # written after the last round
    assert checkpoint is not None and checkpoint["round"] == NUM_ROUNDS
    for name in checkpoint["arrays"]:
        assert torch.isfinite(torch.from_numpy(checkpoint["arrays"][name].numpy())).all(), name


def _assert_detection_fields(results: dict[str, Any]) -> None:
    """Per-round detection counts are present and consistent with the ground truth."""
    malicious = set(results["malicious_clients"])
    assert len(malicious) == NUM_MALICIOUS
    for row in results["rounds"]:
        missing = [k for k in DETECTION_KEYS if k not in row]
        assert not missing, f"round {row['round']} lacks {missing}"
        assert row["participants"] == NUM_CLIENTS and row["invalid"] == []
        assert row["malicious_participants"] == NUM_MALICIOUS
        assert row["f"] == NUM_MALICIOUS  # the pool scaled to a full round
        assert row["tp"] + row["fn"] == row["malicious_participants"]
        assert row["tp"] + row["fp"] == len(row["rejected"])
        assert row["tp"] + row["fp"] + row["fn"] + row["tn"] == row["participants"]
        assert set(row["rejected"]) <= set(range(NUM_CLIENTS))
        assert row["tp"] == len(set(row["rejected"]) & malicious)
        for rate in ("precision", "recall", "fpr"):
            assert math.isnan(row[rate]) or 0.0 <= row[rate] <= 1.0


@pytest.mark.parametrize("defense", sorted(AGGREGATORS.names()))
def test_every_defense_end_to_end(defense: str, tmp_path: Path) -> None:
    results = _run(["attack=sign_flip", f"defense={defense}"], tmp_path)
    assert get_class(results["config"]["defense"]["_target_"]) is AGGREGATORS.get(defense)
    _assert_finite_global_model(results, tmp_path)
    _assert_detection_fields(results)
    on_disk = read_results(tmp_path)
    assert on_disk is not None and on_disk["status"] == "complete"
    assert [r["rejected"] for r in on_disk["rounds"]] == [r["rejected"] for r in results["rounds"]]


def test_fltrust_end_to_end_with_root_set(tmp_path: Path) -> None:
    results = _run(["attack=sign_flip", "defense=fltrust", "defense.root.size=50"], tmp_path / "50")
    assert results["config"]["defense"]["root"]["size"] == 50
    _assert_finite_global_model(results, tmp_path / "50")
    _assert_detection_fields(results)
    # A negated update has negative cosine with the root-set update: ReLU trust 0 = rejected.
    for row in results["rounds"]:
        assert row["tp"] == NUM_MALICIOUS and row["recall"] == 1.0, row
    # The root size reaches the server step: another |D_0| gives another trajectory.
    other = _run(["attack=sign_flip", "defense=fltrust", "defense.root.size=100"], tmp_path / "100")
    assert _per_round(other, "loss") != _per_round(results, "loss")


@pytest.mark.parametrize(
    "pre", ["defense.pre=[nnm]", "defense.pre=[{name:bucketing,s:2}]"], ids=["nnm", "bucketing"]
)
def test_pre_aggregators_compose_with_median(pre: str, tmp_path: Path) -> None:
    composed = _run(["attack=sign_flip", "defense=median", pre], tmp_path / "pre")
    assert composed["config"]["defense"]["pre"]  # recorded in the results
    _assert_finite_global_model(composed, tmp_path / "pre")
    _assert_detection_fields(composed)
    plain = _run(["attack=sign_flip", "defense=median"], tmp_path / "plain")
    assert _per_round(composed, "loss") != _per_round(plain, "loss"), "pre-aggregator had no effect"


def test_num_examples_inflation_moves_fedavg_not_median(tmp_path: Path) -> None:
    """Inflation keeps the honest rows and only lies about num-examples: FedAvg (weighted by
    the claims) changes, the median (which ignores them) is bit-identical to no attack."""
    runs = {
        (defense, attack): _run(
            [f"attack={attack}", f"defense={defense}"], tmp_path / f"{defense}-{attack}"
        )
        for defense in ("fedavg", "median")
        for attack in ("none", "num_examples_inflation")
    }
    keys = ("accuracy", "loss")
    fedavg_clean, fedavg_inflated = runs["fedavg", "none"], runs["fedavg", "num_examples_inflation"]
    assert _per_round(fedavg_inflated, *keys) != _per_round(fedavg_clean, *keys)
    median_clean, median_inflated = runs["median", "none"], runs["median", "num_examples_inflation"]
    assert _per_round(median_inflated, *keys) == _per_round(median_clean, *keys)
    for results in runs.values():
        assert all(math.isfinite(row["loss"]) for row in results["rounds"])


def test_fltrust_official_root_procedure_changes_the_server_step(tmp_path: Path) -> None:
    official = _run(
        ["attack=sign_flip", "defense=fltrust", "defense.root.procedure=official"], tmp_path / "o"
    )
    clients = _run(["attack=sign_flip", "defense=fltrust"], tmp_path / "c")
    assert _per_round(official, "loss") != _per_round(clients, "loss")
