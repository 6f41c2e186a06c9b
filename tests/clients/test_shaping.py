"""fedpoison's ClientApp runs a data attack's shaping (tests/attacks hold the hooks' own
oracles): a ``pgd`` node's reply stays within ε of the received model, a benign node's is
plain SGD, and Neurotoxin's ``global_diff`` keeps the previous global model in the node's
context state."""

from __future__ import annotations

import torch
from fedpoison_testing import TINY, compose_config
from flwr.app import ArrayRecord, ConfigRecord, RecordDict

from fedpoison.clients.app import PREVIOUS_GLOBAL, _ClientRuntime
from fedpoison.records import to_record, to_state_dict
from fedpoison.run import prepare


def _runtime(*overrides: str) -> tuple[_ClientRuntime, list[int]]:
    sim = prepare(compose_config([*TINY, "threat.num_malicious=2", *overrides]))
    return _ClientRuntime(sim.client_spec), sorted(sim.participation.malicious)


def _message(runtime: _ClientRuntime, server_round: int, weights: dict) -> RecordDict:
    procedure = prepare(compose_config(TINY)).procedure
    config = ConfigRecord({**procedure.to_config(), "server-round": server_round})
    return RecordDict({"arrays": to_record(weights), "config": config})


def _delta(reply: RecordDict, start: dict) -> torch.Tensor:
    trained = to_state_dict(reply["arrays"])  # type: ignore[arg-type]
    return torch.cat([(trained[k] - start[k]).reshape(-1) for k in start])


def test_pgd_reply_is_within_eps_and_benign_training_is_unchanged() -> None:
    runtime, pool = _runtime("attack=pgd", "attack.data.eps=0.05")
    start = {k: v.clone() for k, v in runtime.fed.new_model().state_dict().items()}
    bad = _delta(runtime.train(_message(runtime, 1, start), pool[0]), start)
    assert float(bad.norm()) <= 0.05 + 1e-5
    benign = next(p for p in range(6) if p not in pool)
    plain, _ = _runtime("attack=backdoor")
    got = _delta(runtime.train(_message(runtime, 1, start), benign), start)
    want = _delta(plain.train(_message(plain, 1, start), benign), start)
    assert torch.equal(got, want) and float(got.norm()) > 0.05


def test_global_diff_keeps_the_previous_global_model_in_the_node_state() -> None:
    runtime, pool = _runtime("attack=neurotoxin", "attack.data.benign_estimate=global_diff")
    start = {k: v.clone() for k, v in runtime.fed.new_model().state_dict().items()}
    state = RecordDict()
    runtime.train(_message(runtime, 1, start), pool[0], state)
    kept = state[PREVIOUS_GLOBAL]
    assert isinstance(kept, ArrayRecord)
    assert all(torch.equal(to_state_dict(kept)[k], start[k]) for k in start)
    benign, benign_state = next(p for p in range(6) if p not in pool), RecordDict()
    runtime.train(_message(runtime, 1, start), benign, benign_state)
    assert PREVIOUS_GLOBAL not in benign_state  # a benign node keeps nothing


def test_a3fl_server_rederives_the_trigger_the_attackers_poison_with() -> None:
    sim = prepare(
        compose_config(
            [*TINY, "threat.num_malicious=2", "attack=a3fl", "attack.data.outer_epochs=3",
             "attack.data.adv_epochs=1", "attack.data.poison_fraction=1.0"]
        )
    )  # fmt: skip
    runtime, pool = _ClientRuntime(sim.client_spec), sorted(sim.participation.malicious)
    arrays = to_record(runtime.fed.new_model().state_dict())
    runtime.load(arrays)
    attacker = runtime.local_data(pool[1], 1)  # the second attacker, searching on the leader's
    assert sim.evaluator.refresh is not None
    sets = sim.evaluator.refresh(1, arrays)
    assert sets is not None and sim.evaluator.refresh(2, arrays) is not None
    patch = attacker.x[0, :, 2:7, 2:7]
    assert not torch.allclose(patch, torch.full_like(patch, 0.5))  # searched, not the init
    assert torch.equal(sets["asr"][0][0, :, 2:7, 2:7], patch)
    ended = prepare(compose_config([*TINY, "threat.num_malicious=2", "attack=a3fl",
                                    "threat.end_round=1"]))  # fmt: skip
    assert ended.evaluator.refresh is not None and ended.evaluator.refresh(2, arrays) is None
