"""End to end on digits (20 clients, 4 malicious, FedAvg, MLP, 20 rounds): each backdoor of
issue 20 in the settings below reaches ASR ≥ 0.8 with main accuracy within 0.1 of no attack,
and DBA's global trigger beats every local piece. Settings differ from the shipped YAMLs where
digits need it (docs/backdoors.md lists the numbers, the Neurotoxin lifespan comparison and
the edge-case runs, which do not reach 0.8 here).

A3FL is checked against a control that poisons nothing (``poison_fraction=0``: the attackers
still search the trigger against the global model, the server measures it the same way). On
8×8 digits its 5×5 patch covers 39 % of the image and the control alone reaches ASR ≥ 0.8: an
adversarial patch, not a backdoor, which the digits test pins. On MNIST (28×28, the patch is
3.2 % of the image) the backdoor is implanted: ASR ≥ 0.8 under FedAvg, far above the control."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fedpoison_testing import run_simulation

from fedpoison.data.mnist import MNIST, load_mnist

BASE = ["defense=fedavg", "threat.num_malicious=4", "num_rounds=20", "progress=false",
        "checkpoint_every=0"]  # fmt: skip
SETTINGS = {
    "backdoor": [],
    "neurotoxin": [],
    "pgd": ["attack.data.eps=0.5", "attack.data.scale=4"],
    "blended": ["attack.data.alpha_train=0.5", "attack.data.alpha_test=0.5"],
    "dba": [],
}
A3FL = ["attack=a3fl", "defense=fedavg", "threat.num_malicious=4", "progress=false",
        "checkpoint_every=0"]  # fmt: skip
NO_POISON = "attack.data.poison_fraction=0.0"  # the control: the trigger search alone
MNIST_ROUNDS = 12


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


@pytest.mark.slow
def test_a3fl_on_digits_is_an_adversarial_patch(tmp_path: Path) -> None:
    """The shipped 5×5 patch on 8×8 digits: the control, which implants nothing, reaches the
    ASR by itself (docs/backdoors.md, "A3FL and its control")."""
    results = run_simulation([*A3FL, "num_rounds=20", NO_POISON], tmp_path)
    print(f"\n[a3fl digits, no poisoning] ASR {results['final']['asr']:.3f}")
    assert results["final"]["asr"] >= 0.8


@pytest.mark.slow
def test_a3fl_implants_a_backdoor_on_mnist(tmp_path: Path) -> None:
    """On MNIST the shipped attack reaches ASR ≥ 0.8 under FedAvg and the control stays far
    below it: the ASR measures the poisoning, not the trigger search."""
    try:
        load_mnist()
    except FileNotFoundError as err:
        pytest.skip(f"MNIST not available offline: {MNIST.install_hint} ({err})")
    runs = {
        name: run_simulation([*A3FL, "dataset=mnist", f"num_rounds={MNIST_ROUNDS}", *extra],
                             tmp_path / name)["final"]["asr"]
        for name, extra in (("attack", []), ("control", [NO_POISON]))
    }  # fmt: skip
    print(f"\n[a3fl mnist, {MNIST_ROUNDS} rounds] ASR {runs}")
    assert runs["attack"] >= 0.8
    assert runs["attack"] - runs["control"] >= 0.5
