"""Malicious clients skip the honest training an update attack never reads
(``UpdateAttack.reads_own_updates``, ``ClientSpec.skip_malicious_training``): they reply with
the received model and their example count, without a loss, and every other number of the run
stays what it was when they trained."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
from fedpoison_testing import compose_config, run_simulation
from flwr.app import ConfigRecord, RecordDict

from fedpoison.attacks import ALIE
from fedpoison.clients.app import ClientSpec, _ClientRuntime
from fedpoison.protocol import NUM_EXAMPLES, SERVER_ROUND, TRAIN_LOSS
from fedpoison.records import to_record, to_state_dict
from fedpoison.run import prepare
from fedpoison.training.momentum import WorkerMomentum

BASE = [
    "federation.num_clients=8",
    "threat.num_malicious=2",
    "threat.knowledge=all",
    "defense=trimmed_mean",
    "defense.f=2",
    "num_rounds=3",
    "checkpoint_every=0",
    "progress=false",
]
ALIE_BENIGN = ["attack=alie", "attack.update.stat_source=benign"]
SKIPPING = [*BASE, *ALIE_BENIGN]
TIMING = ("train_s", "aggregate_s", "eval_s", "write_s")


@pytest.mark.parametrize(
    ("overrides", "skips"),
    [
        (ALIE_BENIGN, True),
        (["attack=ipm"], True),
        (["attack=gaussian"], True),
        (["attack=infinity"], True),
        (["attack=alie", "attack.update.stat_source=known"], False),  # own rows too
        (["attack=gaussian", "attack.update.mode=fang"], False),
        (["attack=sign_flip"], False),
        (["attack=backdoor"], False),  # a data attack trains the malicious clients
        ([*ALIE_BENIGN, "training.worker_momentum=0.9"], False),  # buffers outlive the attack
    ],
)
def test_which_runs_skip_the_malicious_training(overrides: list[str], skips: bool) -> None:
    spec = prepare(compose_config([*BASE, *overrides])).client_spec
    assert spec.skip_malicious_training is skips


@pytest.mark.parametrize(
    "change",
    [
        {"data_attack": {"_target_": "fedpoison.attacks.label_flip.LabelFlip"}},
        {"reply_attack": {"_target_": "fedpoison.attacks.malformed.Malformed"}},
        {"worker_momentum": WorkerMomentum(0.9)},
    ],
)
def test_a_spec_refuses_to_skip_training_that_something_uses(change: dict) -> None:
    spec = prepare(compose_config(SKIPPING)).client_spec
    with pytest.raises(ValueError, match="^skip_malicious_training needs no data attack"):
        ClientSpec(**{**vars(spec), **change})


def test_a_skipping_client_replies_with_the_received_model_while_the_adversary_acts() -> None:
    sim = prepare(compose_config([*SKIPPING, "threat.start_round=2"]))
    skipping = _ClientRuntime(sim.client_spec)
    training = _ClientRuntime(dataclasses.replace(sim.client_spec, skip_malicious_training=False))
    pool = set(sim.participation.malicious)
    assert len(pool) == 2
    model = sim.federation.new_model().state_dict()
    for server_round in (1, 2):  # the adversary acts from round 2
        arrays = to_record({k: v + 0.01 * server_round for k, v in model.items()})
        config = ConfigRecord({**sim.procedure.to_config(), SERVER_ROUND: server_round})
        content = RecordDict({"arrays": arrays, "config": config})
        for pid in range(8):
            got, want = skipping.train(content, pid), training.train(content, pid)
            if pid in pool and server_round == 2:
                sent = to_state_dict(got["arrays"])
                assert all(torch.equal(sent[k], v) for k, v in to_state_dict(arrays).items())
                count = len(sim.federation.client_data(pid)[1])
                assert dict(got["metrics"]) == {NUM_EXAMPLES: count}
                assert want["metrics"][NUM_EXAMPLES] == count and TRAIN_LOSS in want["metrics"]
            else:
                assert dict(got["metrics"]) == dict(want["metrics"])
                sent, trained = to_state_dict(got["arrays"]), to_state_dict(want["arrays"])
                assert all(torch.equal(sent[k], v) for k, v in trained.items())


def _rows(results: dict) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING} for r in results["rounds"]]


@pytest.mark.parametrize("engine", ["inline", "vectorized"])
def test_skipping_changes_only_the_train_loss_to_the_honest_clients_mean(
    engine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    overrides = [*SKIPPING, f"engine={engine}"]
    skipped = _rows(run_simulation(overrides, tmp_path / "skipped"))
    with monkeypatch.context() as patch:
        patch.setattr(ALIE, "reads_own_updates", lambda self: True)  # they train, unread
        assert not prepare(compose_config(overrides)).client_spec.skip_malicious_training
        trained = _rows(run_simulation(overrides, tmp_path / "trained"))
    loss_skipped = [row.pop("train_loss") for row in skipped]
    loss_trained = [row.pop("train_loss") for row in trained]
    assert skipped == trained  # accuracy, loss, detection, participants: bit for bit
    assert loss_skipped != loss_trained and all(math.isfinite(x) for x in loss_skipped)

    sim = prepare(compose_config(overrides))  # round 1: the mean of the 6 honest clients' losses
    runtime = _ClientRuntime(dataclasses.replace(sim.client_spec, skip_malicious_training=False))
    config = ConfigRecord({**sim.procedure.to_config(), SERVER_ROUND: 1})
    content = RecordDict({"arrays": to_record(sim.federation.new_model().state_dict())})
    content["config"] = config
    honest = [pid for pid in range(8) if pid not in sim.participation.malicious]
    losses = [float(runtime.train(content, pid)["metrics"][TRAIN_LOSS]) for pid in honest]
    assert loss_skipped[0] == pytest.approx(sum(losses) / len(losses), rel=1e-6)


@pytest.mark.slow
@pytest.mark.ray
@pytest.mark.parametrize("engine", ["ray", "flower"])
def test_ray_and_flower_engines_skip_as_inline_does(engine: str, tmp_path: Path) -> None:
    inline = _rows(run_simulation(SKIPPING, tmp_path / "inline"))
    extra = ["engine.num_workers=2"] if engine == "ray" else []
    other = run_simulation([*SKIPPING, f"engine={engine}", *extra], tmp_path / engine)
    assert other["provenance"]["engine"] == engine
    assert _rows(other) == inline  # train_loss included: the same clients skipped
