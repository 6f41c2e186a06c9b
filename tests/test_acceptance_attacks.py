"""Acceptance: the attack matrix, an attack × defense sweep, and engine agreement.

The matrix (sign flipping against FedAvg, median and trimmed mean; the backdoor against
FedAvg) runs the default scenario (digits, 20 clients, MLP, IID, default training, 20
rounds) with the shipped attack defaults. The sweep runs every attack yaml against a
representative set of defenses for 2 rounds: valid pairs complete, invalid ones fail in
``prepare`` with a one-line :class:`~fedpoison.config.ConfigError`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from fedpoison_testing import CONF_DIR, compose_config, run_simulation

from fedpoison.attacks.base import DataAttack
from fedpoison.attacks.catalogue import attack_specs
from fedpoison.attacks.threat import ThreatModel
from fedpoison.config import ConfigError
from fedpoison.run import prepare

ATTACKS = sorted(p.stem for p in (Path(CONF_DIR) / "attack").glob("*.yaml"))
SPECS = {spec.name: spec for spec in attack_specs()}
# what each shipped config declares: the knowledge its update attack needs, and whether its data
# attack has a success set (a triggered test set: a per-round attack success rate is recorded)
NEEDS_FULL_KNOWLEDGE = {
    name
    for name, spec in SPECS.items()
    if spec.update and spec.update.required_knowledge() == "all"
}
DATA_ATTACKS_WITH_TRIGGER = {
    name
    for name, spec in SPECS.items()
    if spec.data and type(spec.data).success_set is not DataAttack.success_set
}

# --------------------------------------------------------------------------- attack matrix
MATRIX = ["progress=false", "checkpoint_every=0"]  # 20 clients, 20 rounds, default training
SIGN_FLIP_POOL = 6  # 30% of the clients
BACKDOOR_POOL = 4  # the default pool (20%); 6 reaches ASR 0.997


@pytest.fixture(scope="module")
def matrix_run(tmp_path_factory: pytest.TempPathFactory):
    """``matrix_run(attack, defense, pool)`` → results; each configuration runs once."""
    cache: dict[tuple[str, str, int], dict[str, Any]] = {}

    def run(attack: str, defense: str, pool: int) -> dict[str, Any]:
        key = (attack, defense, pool)
        if key not in cache:
            run_dir = tmp_path_factory.mktemp(f"{defense}-{attack}-f{pool}")
            overrides = [
                *MATRIX,
                f"attack={attack}",
                f"defense={defense}",
                f"threat.num_malicious={pool}",
            ]
            cache[key] = run_simulation(overrides, run_dir)
            assert cache[key]["status"] == "complete" and len(cache[key]["rounds"]) == 20
        return cache[key]

    return run


def _accuracy_loss(matrix_run, defense: str) -> tuple[float, float, float]:
    """(no-attack accuracy, sign-flip accuracy, loss in points) with the same pool, hence the
    same f for trimmed mean; the no-attack pool behaves honestly."""
    clean = matrix_run("none", defense, SIGN_FLIP_POOL)["final"]["accuracy"]
    attacked = matrix_run("sign_flip", defense, SIGN_FLIP_POOL)["final"]["accuracy"]
    print(
        f"\n[attack matrix] {defense}: no attack {clean:.4f}, "
        f"sign_flip f={SIGN_FLIP_POOL} {attacked:.4f}, "
        f"loss {100 * (clean - attacked):.1f} points"
    )
    return clean, attacked, clean - attacked


def test_sign_flip_breaks_fedavg(matrix_run) -> None:
    clean, attacked, loss = _accuracy_loss(matrix_run, "fedavg")
    assert clean >= 0.9, "the clean FedAvg baseline should learn digits"
    assert loss >= 0.30


@pytest.mark.parametrize("defense", ["median", "trimmed_mean"])
def test_robust_rules_withstand_sign_flip(matrix_run, defense: str) -> None:
    clean, attacked, loss = _accuracy_loss(matrix_run, defense)
    assert loss <= 0.10


def test_backdoor_succeeds_against_fedavg(matrix_run) -> None:
    backdoored = matrix_run("backdoor", "fedavg", BACKDOOR_POOL)
    clean = matrix_run("none", "fedavg", BACKDOOR_POOL)["final"]["accuracy"]
    final = backdoored["final"]
    print(
        f"\n[attack matrix] backdoor f={BACKDOOR_POOL} vs fedavg: ASR {final['asr']:.4f}, "
        f"accuracy {final['accuracy']:.4f} (clean {clean:.4f})"
    )
    assert all("asr" in row for row in backdoored["rounds"])
    assert final["asr"] >= 0.8
    assert clean - final["accuracy"] <= 0.05  # the main task is barely affected (stealthy)


# --------------------------------------------------------------------------- sweep
SWEEP_DEFENSES = ["fedavg", "krum", "median", "trimmed_mean", "fltrust", "bulyan"]
# 15 clients, 2 malicious: Bulyan (n ≥ 4f+3 = 11) still runs when attack=malformed has
# rejected both malicious replies (13 rows, f = ⌈2·13/15⌉ = 2).
SWEEP = [
    "federation.num_clients=15",
    "threat.num_malicious=2",
    "num_rounds=2",
    "progress=false",
    "checkpoint_every=0",
]


NEEDS_DEFENSE = {
    name for name, spec in SPECS.items() if spec.update and spec.update.requires_defense()
}
# rounds these attacks may make the server skip: malformed (a finite 1e38 reply can destroy
# FedAvg; see test_acceptance_faults) and infinity (every rule refuses its +inf rows)
SKIPS_ROUNDS = {"malformed", "infinity"}


def _sweep_overrides(attack: str, defense: str) -> list[str]:
    extra = []
    if attack in NEEDS_DEFENSE:
        extra.append("threat.knows_defense=true")
    if attack in SKIPS_ROUNDS:
        extra.append("robustness.skip_invalid_rounds=true")
    return [*SWEEP, f"attack={attack}", f"defense={defense}", *extra]


def _sweep_params() -> list[Any]:
    return [
        pytest.param(attack, defense, id=f"{attack}-{defense}")
        for attack in ATTACKS
        for defense in SWEEP_DEFENSES
    ]


@pytest.mark.parametrize(("attack", "defense"), _sweep_params())
def test_attack_defense_sweep(attack: str, defense: str, tmp_path: Path) -> None:
    overrides = _sweep_overrides(attack, defense)
    if attack in NEEDS_DEFENSE and defense == "fltrust":  # cannot simulate: fails before round 1
        with pytest.raises(ConfigError) as info:
            prepare(compose_config(overrides))
        assert "\n" not in str(info.value)
        return
    results = run_simulation(overrides, tmp_path)
    assert results["status"] == "complete" and len(results["rounds"]) == 2
    assert results["config"]["attack"]["name"] == attack
    for row in results["rounds"]:
        if "skipped" in row:
            assert attack in SKIPS_ROUNDS, row
            continue
        assert math.isfinite(row["loss"]) and 0.0 <= row["accuracy"] <= 1.0, row
        if attack in DATA_ATTACKS_WITH_TRIGGER:
            assert 0.0 <= row["asr"] <= 1.0
        if attack != "malformed":  # malformed replies are excluded before the defense
            assert row["participants"] == 15 and row["malicious_participants"] == 2
            assert row["invalid"] == []


@pytest.mark.parametrize("attack", ATTACKS)
def test_knowledge_own_rejects_exactly_the_full_knowledge_attacks(attack: str) -> None:
    overrides = [*SWEEP, f"attack={attack}", "threat.knowledge=own", "threat.knows_defense=true"]
    if attack not in NEEDS_FULL_KNOWLEDGE:
        prepare(compose_config(overrides))  # builds and passes every check
        return
    with pytest.raises(ConfigError) as info:
        prepare(compose_config(overrides))
    message = str(info.value)
    assert "\n" not in message and f"attack {attack} needs threat.knowledge=all" in message


@pytest.mark.parametrize("defense", SWEEP_DEFENSES)
def test_adaptive_without_knows_defense_is_a_config_error(defense: str) -> None:
    with pytest.raises(ConfigError) as info:
        prepare(compose_config([*SWEEP, "attack=adaptive", f"defense={defense}"]))
    message = str(info.value)
    assert "\n" not in message and "threat.knows_defense=true" in message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            ["defense=bulyan", "federation.num_clients=10", "threat.num_malicious=2"],
            "bulyan: needs n ≥ 4f+3",
        ),
        (["defense=krum", "threat.num_malicious=9"], "krum: needs n ≥ 2f+3"),
        (["defense=median", "threat.num_malicious=10"], "median: needs n ≥ 2f+1"),
        (["defense=trimmed_mean", "threat.num_malicious=10"], "trimmed_mean: needs"),
        (
            ["defense=bulyan", "federation.num_clients=20", "federation.clients_per_round=10"],
            "bulyan",
        ),
    ],
    ids=[
        "bulyan-10-clients",
        "krum-9-of-20",
        "median-10-of-20",
        "trimmed_mean-10-of-20",
        "bulyan-10-per-round",
    ],
)
def test_too_few_clients_is_a_config_error(overrides: list[str], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        prepare(compose_config(["attack=sign_flip", *overrides]))
    message = str(info.value)
    assert "\n" not in message and expected in message


# --------------------------------------------------------------------------- pool and engines
POOL = [
    "federation.num_clients=12",
    "threat.num_malicious=3",
    "num_rounds=3",
    "progress=false",
    "checkpoint_every=0",
    "defense=median",
    "attack=malformed",
    "attack.reply.faults=['nan',crash,wrong_shape]",
]  # all detectable; quoted: Hydra reads nan as a float


def _assert_pool_fixed(results: dict[str, Any], seed: int = 0) -> None:
    """The server's pool is the seeded one, and in every round exactly the pool's ClientApps
    (which decide for themselves whether they are malicious) sent a broken reply."""
    pool = sorted(ThreatModel(num_malicious=3).malicious_ids(12, seed))
    assert results["malicious_clients"] == pool
    for row in results["rounds"]:
        assert sorted(entry["client"] for entry in row["invalid"]) == pool, row["round"]


def test_malicious_pool_identical_across_rounds(tmp_path: Path) -> None:
    _assert_pool_fixed(run_simulation(POOL, tmp_path / "seed0"))
    other = run_simulation([*POOL, "seed=1"], tmp_path / "seed1")
    _assert_pool_fixed(other, seed=1)


ENGINE_RUN = [
    "federation.num_clients=10",
    "threat.num_malicious=2",
    "num_rounds=2",
    "progress=false",
    "checkpoint_every=0",
    "attack=alie",
    "defense=trimmed_mean",
]


def _trajectory(results: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [
        (r["round"], r["accuracy"], r["loss"], r["rejected"], r["malicious_participants"])
        for r in results["rounds"]
    ]


@pytest.mark.slow
@pytest.mark.ray
def test_malicious_pool_identical_on_ray(tmp_path: Path) -> None:
    inline = run_simulation(POOL, tmp_path / "inline")
    ray = run_simulation([*POOL, "engine=ray", "engine.num_workers=2"], tmp_path / "ray")
    _assert_pool_fixed(ray)
    assert ray["malicious_clients"] == inline["malicious_clients"]


@pytest.mark.slow
@pytest.mark.ray
def test_ray_engine_matches_inline_under_attack(tmp_path: Path) -> None:
    inline = run_simulation(ENGINE_RUN, tmp_path / "inline")
    ray = run_simulation([*ENGINE_RUN, "engine=ray", "engine.num_workers=2"], tmp_path / "ray")
    assert ray["provenance"]["engine"] == "ray"
    assert ray["malicious_clients"] == inline["malicious_clients"]
    assert _trajectory(ray) == _trajectory(inline)


@pytest.mark.slow
@pytest.mark.ray
def test_flower_engine_matches_inline_under_attack(tmp_path: Path) -> None:
    inline = run_simulation(ENGINE_RUN, tmp_path / "inline")
    flower = run_simulation([*ENGINE_RUN, "engine=flower"], tmp_path / "flower")
    assert flower["provenance"]["engine"] == "flower"
    assert flower["malicious_clients"] == inline["malicious_clients"]
    assert _trajectory(flower) == _trajectory(inline)
