"""training.worker_momentum end to end (REFERENCES D26): the ClientApp sends w_global + m with
m kept in its node's Context; every engine agrees; a resumed run equals an uninterrupted one."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from fedpoison_testing import TINY, compose_config, run_simulation
from flwr.app import ConfigRecord, RecordDict

from fedpoison.checkpoint import load_checkpoint
from fedpoison.clients.app import MOMENTUM, _ClientRuntime
from fedpoison.config import ConfigError
from fedpoison.protocol import SERVER_ROUND
from fedpoison.records import to_record, to_state_dict
from fedpoison.run import prepare
from fedpoison.training.momentum import WorkerMomentum

MOMENTUM_ON = ["training.worker_momentum=0.9", "federation.clients_per_round=4"]


def _flat(state: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1).double() for t in state.values()])


def test_reply_is_global_plus_the_ema_of_the_plain_updates():
    sim = prepare(compose_config(TINY))
    plain = _ClientRuntime(sim.client_spec)
    with_momentum = _ClientRuntime(
        dataclasses.replace(sim.client_spec, worker_momentum=WorkerMomentum(0.9))
    )
    config = sim.procedure.to_config()
    state, ema = RecordDict(), torch.zeros(0)
    model = sim.federation.new_model().state_dict()
    for server_round in (1, 2, 3):
        arrays = to_record({k: v + 0.01 * server_round for k, v in model.items()})
        content = RecordDict(
            {"arrays": arrays, "config": ConfigRecord({**config, SERVER_ROUND: server_round})}
        )
        start = _flat(to_state_dict(arrays))
        delta = _flat(to_state_dict(plain.train(content, 2)["arrays"])) - start
        ema = 0.1 * delta if server_round == 1 else 0.9 * ema + 0.1 * delta
        sent = _flat(to_state_dict(with_momentum.train(content, 2, state)["arrays"])) - start
        assert torch.allclose(sent, ema, atol=1e-6)
        assert torch.allclose(_flat(to_state_dict(state[MOMENTUM])), ema, atol=1e-6)
    assert not torch.allclose(ema, delta, atol=1e-3)  # the momentum is not the last update


def test_zero_momentum_changes_nothing_and_momentum_changes_the_run(simulate):
    plain = simulate(["federation.clients_per_round=4"], "plain")
    zero = simulate(["federation.clients_per_round=4", "training.worker_momentum=0"], "zero")
    moving = simulate(MOMENTUM_ON, "moving")
    assert _metrics(zero) == _metrics(plain)
    assert [r["loss"] for r in moving["rounds"]] != [r["loss"] for r in plain["rounds"]]


def _metrics(results):
    return [(r["round"], r["accuracy"], r["loss"], r["train_loss"]) for r in results["rounds"]]


def test_resumed_run_restores_the_clients_momentum(tmp_path):
    base = [*TINY, *MOMENTUM_ON, "attack=alie", "threat.num_malicious=1", "defense=median"]
    run_simulation([*base, "num_rounds=2", "checkpoint_every=2"], tmp_path / "short")
    saved = load_checkpoint(tmp_path / "short")
    assert saved is not None and saved["clients"]  # every client sampled so far has a buffer
    assert all(list(state) == [MOMENTUM] for state in saved["clients"].values())
    resumed = run_simulation(
        [*base, "num_rounds=4", "checkpoint_every=2", "resume=true"], tmp_path / "short"
    )
    whole = run_simulation([*base, "num_rounds=4", "checkpoint_every=2"], tmp_path / "whole")
    fresh = run_simulation([*base, "num_rounds=4", "checkpoint_every=0"], tmp_path / "fresh")
    assert resumed["provenance"]["resumed_after_round"] == 2
    assert _metrics(resumed) == _metrics(whole) == _metrics(fresh)


def test_vectorized_engine_agrees_with_inline(simulate):
    inline = simulate([*MOMENTUM_ON, "attack=alie", "threat.num_malicious=1"], "inline")
    batched = simulate(
        [*MOMENTUM_ON, "attack=alie", "threat.num_malicious=1", "engine=vectorized"], "batched"
    )
    for a, b in zip(inline["rounds"], batched["rounds"], strict=True):
        assert b["accuracy"] == pytest.approx(a["accuracy"], abs=0.02)
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)


@pytest.mark.ray
def test_ray_engine_is_identical_to_inline(simulate):
    inline = simulate([*MOMENTUM_ON, "num_rounds=3"], "inline")
    ray = simulate([*MOMENTUM_ON, "num_rounds=3", "engine=ray", "engine.num_workers=2"], "ray")
    assert _metrics(ray) == _metrics(inline)


@pytest.mark.slow
@pytest.mark.ray
def test_flower_engine_is_identical_to_inline(simulate):
    inline = simulate([*MOMENTUM_ON, "num_rounds=3", "checkpoint_every=0"], "inline")
    flower = simulate([*MOMENTUM_ON, "num_rounds=3", "checkpoint_every=0", "engine=flower"], "fl")
    assert _metrics(flower) == _metrics(inline)


def test_flower_engine_refuses_checkpointed_momentum_before_round_one():
    with pytest.raises(ConfigError, match="engine=flower cannot checkpoint.*checkpoint_every=0"):
        prepare(compose_config([*TINY, *MOMENTUM_ON, "engine=flower", "checkpoint_every=2"]))


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("training.worker_momentum=1.0", r"training.worker_momentum must be in \[0, 1\)"),
        ("training.worker_dampening=-0.5", r"training.worker_dampening must be in \[0, 1\)"),
    ],
)
def test_out_of_range_settings_are_refused(override, match):
    with pytest.raises(ConfigError, match=match):
        prepare(compose_config([*TINY, override]))


def test_a_run_recorded_before_worker_momentum_existed_still_resumes(tmp_path):
    run_simulation([*TINY, "num_rounds=2", "checkpoint_every=2"], tmp_path / "old")
    path = tmp_path / "old" / "checkpoint.pt"
    state = torch.load(path, weights_only=True)
    for key in ("worker_momentum", "worker_dampening"):
        del state["config"]["training"][key]
    torch.save(state, path)
    resumed = run_simulation(
        [*TINY, "num_rounds=3", "checkpoint_every=2", "resume=true"], tmp_path / "old"
    )
    assert resumed["provenance"]["resumed_after_round"] == 2
    with pytest.raises(ConfigError, match=r"other settings \(training\.worker_momentum\)"):
        run_simulation(
            [*TINY, "num_rounds=4", "checkpoint_every=2", "resume=true", *MOMENTUM_ON[:1]],
            tmp_path / "old",
        )
