"""Acceptance: hostile clients sending broken replies (``attack=malformed``).

The server must record every reply it can detect as broken (with a reason, in results.json)
and keep the global model finite. Faults injected are counted independently of the run: the
test replays the fault draw of :class:`~fedpoison.attacks.malformed.Malformed` (one pick per
malicious client and round from the ``(seed, REPLY_ATTACK, round, client)`` stream) and
compares it with what the server recorded. ``huge`` (weights filled with the finite 1e38) is
the one fault the server cannot detect: it reaches the defense as an ordinary row.

``robustness.skip_invalid_rounds=true`` everywhere: FedAvg, FoolsGold and the geometric median
turn one accepted 1e38 row into a finite but astronomically large global model (evaluation loss
inf resp. ~1e34), after which every client's reply is non-finite and each later round has no
valid row left — without the flag those rounds stop the run with a ``RoundError``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fedpoison_testing import run_simulation

from fedpoison.aggregators import AGGREGATORS
from fedpoison.attacks.malformed import FAULTS
from fedpoison.attacks.threat import ThreatModel
from fedpoison.checkpoint import load_checkpoint
from fedpoison.outputs import read_results
from fedpoison.seeding import REPLY_ATTACK, torch_generator

DEFENSES = sorted(AGGREGATORS.names())
# What results.json must say for each fault (None: undetectable, the row reaches the defense).
REASONS: dict[str, str | None] = {
    "nan": "non-finite weights",
    "inf": "non-finite weights",
    "huge": None,
    "wrong_shape": "malformed arrays: ",
    "wrong_dtype": "malformed arrays: ",
    "missing_array": "malformed arrays: ",
    "extra_array": "malformed arrays: ",
    "negative_examples": "invalid num-examples -5",
    "zero_examples": "invalid num-examples 0",
    "fractional_examples": "invalid num-examples 2.5",
    "huge_examples": "exceeds the client's",
    "no_metrics": "reply lacks 'arrays' or 'metrics'",
    "crash": "error reply",
}
# Rules with no bounded influence (they declare ``bounded_influence = False``): one finite 1e38
# ("huge") reply legitimately drives their global model to finite but unusable weights (FedAvg's
# weighted mean ~1e37; the geometric median from its mean initialisation in 3 Weiszfeld steps;
# FoolsGold, which keeps the lone dissimilar row and down-weights the similar honest ones).
# That is the attack working, not a crash: the run completes, every later all-non-finite round
# is skipped and recorded, and the global weights stay finite. The robust rules must instead
# keep every round and loss finite.
NOT_BOUNDED = {n for n, rule in AGGREGATORS.items() if not rule.bounded_influence}


def test_reasons_cover_every_fault() -> None:
    assert set(REASONS) == set(FAULTS)


def fault_schedule(
    seed: int,
    num_clients: int,
    num_malicious: int,
    num_rounds: int,
    faults: list[str] | None = None,
) -> dict[tuple[int, int], str]:
    """``{(round, client): fault}`` for every malicious client in every round
    (full participation)."""
    names = list(faults) if faults else list(FAULTS)
    pool = sorted(ThreatModel(num_malicious=num_malicious).malicious_ids(num_clients, seed))
    schedule = {}
    for server_round in range(1, num_rounds + 1):
        for client in pool:
            gen = torch_generator(seed, REPLY_ATTACK, server_round, client)
            schedule[server_round, client] = names[
                int(torch.randint(len(names), (1,), generator=gen))
            ]
    return schedule


def check_faults(
    label: str,
    results: dict[str, Any],
    run_dir: Path,
    schedule: dict[tuple[int, int], str],
    num_clients: int,
    bounded: bool = True,
) -> dict[str, int]:
    """Print the fault counts, then assert that the server recorded exactly the detectable
    faults injected (each with its reason, also in results.json), that no honest client was
    ever rejected, and that no round was skipped and every loss is finite."""
    pool = sorted({client for _, client in schedule})
    recorded = {
        (row["round"], entry["client"]): entry["reason"]
        for row in results["rounds"]
        for entry in row["invalid"]
    }
    detectable = {key for key, fault in schedule.items() if REASONS[fault] is not None}
    counts = {
        "injected": len(schedule),
        "detectable": len(detectable),
        "huge": len(schedule) - len(detectable),
        "recorded": sum(client in pool for _, client in recorded),
        "recorded_benign": sum(client not in pool for _, client in recorded),
        "skipped_rounds": sum("skipped" in row for row in results["rounds"]),
    }
    print(
        f"\n[faults] {label}: injected {counts['injected']} (detectable {counts['detectable']}, "
        f"huge {counts['huge']}), recorded {counts['recorded']} from malicious clients "
        f"(+{counts['recorded_benign']} from honest ones), "
        f"skipped rounds {counts['skipped_rounds']}"
    )

    assert results["status"] == "complete" and results["malicious_clients"] == pool
    on_disk = read_results(run_dir)
    assert on_disk is not None and on_disk["status"] == "complete"
    if not bounded:
        return _check_unbounded(results, run_dir, schedule, counts)
    for row, disk_row in zip(results["rounds"], on_disk["rounds"], strict=True):
        r = row["round"]
        assert disk_row["invalid"] == row["invalid"]  # results.json lists every rejected reply
        for entry in row["invalid"]:
            assert isinstance(entry["client"], int) and entry["reason"].strip(), entry
        assert row["participants"] + len(row["invalid"]) == num_clients  # every sampled client
        huge_now = sum(1 for (sr, _), fault in schedule.items() if sr == r and fault == "huge")
        assert (
            row["malicious_participants"] == huge_now
        )  # the undetectable fault reached the defense
        assert row["invalid_malicious"] == sum(e["client"] in pool for e in row["invalid"])
        assert "skipped" not in row, f"round {r} skipped: {row['skipped']}"
        assert math.isfinite(row["loss"]), (
            f"round {r}: loss {row['loss']} (global model not finite)"
        )
    assert counts["recorded_benign"] == 0, (
        "honest clients sent broken replies: the global model is unusable"
    )
    assert set(recorded) == detectable
    for key in detectable:
        assert REASONS[schedule[key]] in recorded[key], (key, schedule[key], recorded[key])
    assert counts["recorded"] == counts["detectable"] == counts["injected"] - counts["huge"]
    return counts


def _check_unbounded(
    results: dict[str, Any],
    run_dir: Path,
    schedule: dict[tuple[int, int], str],
    counts: dict[str, int],
) -> dict[str, int]:
    """A rule without bounded influence: the first round's detectable faults are all recorded,
    every skipped round says why, and the final global model (checkpoint) is finite."""
    first = {(1, e["client"]): e["reason"] for e in results["rounds"][0]["invalid"]}
    expected = {k for k, fault in schedule.items() if k[0] == 1 and REASONS[fault] is not None}
    assert set(first) == expected
    for row in results["rounds"]:
        assert "skipped" not in row or row["skipped"].strip()
    state = load_checkpoint(run_dir)
    assert state is not None
    for name in state["arrays"]:
        assert np.isfinite(state["arrays"][name].numpy()).all(), name
    return counts


# --------------------------------------------------------------------- one fault at a time
@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_fault_is_recorded_with_its_reason(fault: str, tmp_path: Path) -> None:
    overrides = [
        "federation.num_clients=8",
        "threat.num_malicious=2",
        "num_rounds=1",
        "progress=false",
        "checkpoint_every=0",
        "attack=malformed",
        "defense=median",
        f"attack.reply.faults=['{fault}']",
    ]  # quoted: Hydra would read nan/inf as floats
    results = run_simulation(overrides, tmp_path)
    counts = check_faults(
        f"only {fault} (median)", results, tmp_path, fault_schedule(0, 8, 2, 1, [fault]), 8
    )
    assert counts["recorded"] == (0 if fault == "huge" else 2)


# --------------------------------------------------------------------- every defense, all faults
MIX_CLIENTS, MIX_MALICIOUS, MIX_ROUNDS = 20, 3, 4
# 20 clients with 3 malicious: Bulyan (n ≥ 4f+3) still runs with 17 valid rows (f = 3).
MIX = [
    f"federation.num_clients={MIX_CLIENTS}",
    f"threat.num_malicious={MIX_MALICIOUS}",
    f"num_rounds={MIX_ROUNDS}",
    "progress=false",
    "attack=malformed",
    "robustness.skip_invalid_rounds=true",
    f"checkpoint_every={MIX_ROUNDS}",
]
MIX_SCHEDULE = fault_schedule(0, MIX_CLIENTS, MIX_MALICIOUS, MIX_ROUNDS)


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory):
    """``mixed_run(defense)`` → (results, run_dir), run once per defense."""
    cache: dict[str, tuple[dict[str, Any], Path]] = {}

    def run(defense: str) -> tuple[dict[str, Any], Path]:
        if defense not in cache:
            run_dir = tmp_path_factory.mktemp(f"malformed-{defense}")
            cache[defense] = run_simulation([*MIX, f"defense={defense}"], run_dir), run_dir
        return cache[defense]

    return run


def test_mixed_schedule_exercises_the_undetectable_fault() -> None:
    faults = list(MIX_SCHEDULE.values())
    assert "huge" in faults and len(set(faults)) >= 8, faults


@pytest.mark.parametrize("defense", DEFENSES)
def test_malformed_completes_with_every_defense(defense: str, mixed_run) -> None:
    results, _ = mixed_run(defense)
    assert results["status"] == "complete" and len(results["rounds"]) == MIX_ROUNDS
    for row in results["rounds"]:
        assert row["invalid"], "every round of this schedule has detectable faults"
        assert all(entry["reason"].strip() for entry in row["invalid"])


@pytest.mark.parametrize("defense", DEFENSES)
def test_malformed_faults_recorded_and_model_finite(defense: str, mixed_run) -> None:
    results, run_dir = mixed_run(defense)
    check_faults(
        f"{defense} (inline)",
        results,
        run_dir,
        MIX_SCHEDULE,
        MIX_CLIENTS,
        defense not in NOT_BOUNDED,
    )


# --------------------------------------------------------------------- only 'huge'
HUGE = [
    "federation.num_clients=15",
    "threat.num_malicious=2",
    "num_rounds=5",
    "progress=false",
    "checkpoint_every=5",
    "attack=malformed",
    "attack.reply.faults=[huge]",
    "robustness.skip_invalid_rounds=true",
]


@pytest.mark.parametrize("defense", DEFENSES)
def test_huge_replies_reach_the_defense_and_the_model_stays_finite(
    defense: str, tmp_path: Path
) -> None:
    results = run_simulation([*HUGE, f"defense={defense}"], tmp_path)
    schedule = fault_schedule(0, 15, 2, 5, ["huge"])
    counts = check_faults(
        f"only huge ({defense})", results, tmp_path, schedule, 15, defense not in NOT_BOUNDED
    )
    assert counts["huge"] == 10
    if defense not in NOT_BOUNDED:
        assert counts["recorded"] == 0


# --------------------------------------------------------------------- other engines
ENGINE = [
    "federation.num_clients=10",
    "threat.num_malicious=2",
    "num_rounds=3",
    "progress=false",
    "checkpoint_every=0",
    "attack=malformed",
    "defense=median",
    "seed=2",
    "robustness.skip_invalid_rounds=true",
]
ENGINE_SCHEDULE = fault_schedule(2, 10, 2, 3)


def _compare_with_inline(engine: list[str], tmp_path: Path) -> None:
    assert {"crash", "huge"} <= set(
        ENGINE_SCHEDULE.values()
    )  # a raising ClientApp, an accepted row
    inline = run_simulation(ENGINE, tmp_path / "inline")
    other = run_simulation([*ENGINE, *engine], tmp_path / "other")
    check_faults(f"median ({engine[0]})", other, tmp_path / "other", ENGINE_SCHEDULE, 10)
    assert [
        (r["accuracy"], r["loss"], [e["client"] for e in r["invalid"]]) for r in other["rounds"]
    ] == [(r["accuracy"], r["loss"], [e["client"] for e in r["invalid"]]) for r in inline["rounds"]]


@pytest.mark.slow
@pytest.mark.ray
def test_malformed_on_ray_engine(tmp_path: Path) -> None:
    _compare_with_inline(["engine=ray", "engine.num_workers=2"], tmp_path)


@pytest.mark.slow
@pytest.mark.ray
def test_malformed_on_flower_engine(tmp_path: Path) -> None:
    _compare_with_inline(["engine=flower"], tmp_path)


# --------------------------------------------------------------------- every defense, other engines
@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.parametrize(
    "engine", [["engine=ray", "engine.num_workers=2"], ["engine=flower"]], ids=["ray", "flower"]
)
def test_malformed_with_every_defense_on_other_engines(engine: list[str], tmp_path: Path) -> None:
    for defense in DEFENSES:
        results = run_simulation(
            [*MIX, f"defense={defense}", *engine, "num_rounds=2"], tmp_path / defense
        )
        assert results["status"] == "complete"
        assert all(row["invalid"] for row in results["rounds"])


# --------------------------------------------------------------------- hanging and dying clients
PROCESS = [
    "federation.num_clients=6",
    "threat.num_malicious=1",
    "num_rounds=2",
    "progress=false",
    "checkpoint_every=0",
    "attack=malformed",
    "defense=median",
    "engine=ray",
    "engine.num_workers=2",
]


@pytest.mark.slow
@pytest.mark.ray
def test_hanging_client_times_out_on_ray(tmp_path: Path) -> None:
    results = run_simulation(
        [
            *PROCESS,
            "attack.reply.faults=[hang]",
            "attack.reply.hang_seconds=60",
            "engine.client_timeout=3",
        ],
        tmp_path,
    )
    bad = results["malicious_clients"][0]
    for row in results["rounds"]:
        assert [e["client"] for e in row["invalid"]] == [bad]
        assert "TimeoutError" in row["invalid"][0]["reason"]
        assert row["participants"] == 5


@pytest.mark.slow
@pytest.mark.ray
def test_dying_worker_is_replaced_on_ray(tmp_path: Path) -> None:
    results = run_simulation([*PROCESS, "attack.reply.faults=[exit]"], tmp_path)
    bad = results["malicious_clients"][0]
    for row in results["rounds"]:
        assert [e["client"] for e in row["invalid"]] == [bad]
        assert "error reply" in row["invalid"][0]["reason"]
        assert row["participants"] == 5 and math.isfinite(row["loss"])
