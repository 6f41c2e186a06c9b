"""End to end on digits (20 clients, 4 malicious, FedAvg, MLP, 20 rounds): each backdoor of
issue 20 in the settings below reaches ASR ≥ 0.8 with main accuracy within 0.1 of no attack,
and DBA's global trigger beats every local piece. Settings differ from the shipped YAMLs where
digits need it (docs/backdoors.md lists the numbers, the Neurotoxin lifespan comparison and
the edge-case runs, which do not reach 0.8 here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fedpoison_testing import run_simulation

BASE = ["defense=fedavg", "threat.num_malicious=4", "num_rounds=20", "progress=false",
        "checkpoint_every=0"]  # fmt: skip
SETTINGS = {
    "backdoor": [],
    "neurotoxin": [],
    "pgd": ["attack.data.eps=0.5", "attack.data.scale=4"],
    "blended": ["attack.data.alpha_train=0.5", "attack.data.alpha_test=0.5"],
    "dba": [],
    "a3fl": [],
}


@pytest.fixture(scope="module")
def clean_accuracy(tmp_path_factory: pytest.TempPathFactory) -> float:
    results = run_simulation([*BASE, "attack=none"], tmp_path_factory.mktemp("none"))
    return float(results["final"]["accuracy"])


@pytest.mark.slow
@pytest.mark.parametrize("attack", SETTINGS)
def test_backdoor_succeeds_against_fedavg(attack: str, clean_accuracy: float, tmp_path: Path):
    results: dict[str, Any] = run_simulation(
        [*BASE, f"attack={attack}", *SETTINGS[attack]], tmp_path
    )
    final = results["final"]
    print(f"\n[{attack}] ASR {final['asr']:.3f}, accuracy {final['accuracy']:.3f} "
          f"(no attack {clean_accuracy:.3f})")  # fmt: skip
    assert final["asr"] >= 0.8
    assert clean_accuracy - final["accuracy"] <= 0.1
    if attack == "dba":
        last = results["rounds"][-1]
        pieces = [last[f"asr_piece{k}"] for k in range(4)]
        assert final["asr"] > max(pieces), pieces
