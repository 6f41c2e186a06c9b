"""Hand-made study trees: ``results.json`` files shaped like ``fedpoison.execute.execute``
writes."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

TARGETS = {
    "fedavg": "fedpoison.aggregators.mean.FedAvg",
    "trimmed_mean": "fedpoison.aggregators.trimmed_mean.TrimmedMean",
}
ATTACKS: dict[str, dict[str, Any]] = {
    "none": {"name": "none", "data": None, "update": None},
    "alie": {
        "name": "alie",
        "data": None,
        "update": {"_target_": "fedpoison.attacks.alie.ALIE", "z": None},
    },
    "backdoor": {
        "name": "backdoor",
        "data": {"_target_": "fedpoison.attacks.backdoor.Backdoor", "size": 3, "target": 0},
        "update": None,
    },
}
ROUNDS = 3


def write_run(
    root: Path,
    *,
    defense: str,
    attack: str,
    seed: int,
    accuracy: float,
    f: int = 4,
    asr: float | None = None,
    precision: list[float | None] | None = None,
    recall: list[float | None] | None = None,
    status: str = "complete",
    num_rounds: int = ROUNDS,
    commit: str = "0123456789abcdef",
    dirty: bool = False,
) -> Path:
    """A Hydra job directory with ``results.json``; accuracy climbs by 0.1 a round to ``accuracy``.

    A ``running`` run stops after its first round.
    """
    run_dir = root / f"{defense}-{attack}-f{f}-seed{seed}"
    (run_dir / ".hydra").mkdir(parents=True)
    done = num_rounds if status == "complete" else 1
    rounds = []
    for i in range(done):
        row: dict[str, Any] = {"round": i + 1, "accuracy": accuracy - 0.1 * (num_rounds - 1 - i)}
        row["loss"] = 1.0 - row["accuracy"]
        if asr is not None:
            row["asr"] = asr
        row["precision"] = precision[i] if precision else None
        row["recall"] = recall[i] if recall else None
        rounds.append(row)
    config = {
        "seed": seed,
        "num_rounds": num_rounds,
        "progress": False,
        "dataset": {"_target_": "fedpoison.data.digits.load_digits", "test_fraction": 0.2},
        "attack": ATTACKS[attack],
        "defense": {"_target_": TARGETS[defense], "f": None, "pre": []},
        "threat": {"num_malicious": f, "fraction": None},
        "federation": {"num_clients": 20, "clients_per_round": None, "fraction": 1.0},
        "engine": {"_target_": "fedpoison.engines.inline.InlineEngine"},
    }
    results = {
        "status": status,
        "config": config,
        "provenance": {"fedpoison": "0.1.0", "flwr": "1.42.0", "torch": "2.6.0",
                       "engine": "inline", "seed": seed, "git_commit": commit,
                       "git_dirty": dirty},
        "malicious_clients": list(range(1, 1 + 4 * f, 4)),
        "rounds": rounds,
        "final": ({k: rounds[-1][k] for k in ("accuracy", "loss", "asr") if k in rounds[-1]}
                  if status == "complete" else None),
    }  # fmt: skip
    (run_dir / "results.json").write_text(json.dumps(results, indent=2))
    return run_dir


def write_grid(root: Path) -> Path:
    """The study of the report tests (f = 4 malicious clients, seeds 0 and 1).

    ========================  =============  =============  =========================
    final accuracy            no attack      alie           backdoor (accuracy, ASR)
    ========================  =============  =============  =========================
    fedavg                    0.90, 0.92     0.40, 0.50     seed 0: 0.89, 0.95
    trimmed_mean              0.88, 0.89     0.80, 0.84     seed 0: 0.87, 0.30;
                                                            seed 1: running (1 round)
    ========================  =============  =============  =========================

    plus ``trimmed_mean-alie-f4-seed2`` with ``.hydra/`` only (failed before round 1), and
    detection rates on trimmed_mean × alie.
    """
    for defense, attack, accuracies in (
        ("fedavg", "none", (0.90, 0.92)),
        ("fedavg", "alie", (0.40, 0.50)),
        ("trimmed_mean", "none", (0.88, 0.89)),
    ):
        for seed, accuracy in enumerate(accuracies):
            write_run(root, defense=defense, attack=attack, seed=seed, accuracy=accuracy)
    write_run(
        root,
        defense="trimmed_mean",
        attack="alie",
        seed=0,
        accuracy=0.80,
        precision=[1.0, 0.5, None],
        recall=[0.5, 0.5, 0.25],
    )
    write_run(
        root,
        defense="trimmed_mean",
        attack="alie",
        seed=1,
        accuracy=0.84,
        precision=[0.5, None, None],
        recall=[0.25, 0.25, 0.25],
    )
    write_run(root, defense="fedavg", attack="backdoor", seed=0, accuracy=0.89, asr=0.95)
    write_run(root, defense="trimmed_mean", attack="backdoor", seed=0, accuracy=0.87, asr=0.30)
    write_run(root, defense="trimmed_mean", attack="backdoor", seed=1, accuracy=0.86, asr=0.5,
              status="running")  # fmt: skip
    orphan = root / "trimmed_mean-alie-f4-seed2" / ".hydra"
    orphan.mkdir(parents=True)
    (orphan / "overrides.yaml").write_text("- defense=trimmed_mean\n- attack=alie\n- seed=2\n")
    return root


@pytest.fixture
def run_writer() -> Callable[..., Path]:
    """:func:`write_run`."""
    return write_run


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """:func:`write_grid` in a fresh directory, shared by a test module."""
    return write_grid(tmp_path_factory.mktemp("study"))
