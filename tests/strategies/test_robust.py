"""fedpoison.RobustStrategy as a Flower user writes it: a stock quickstart ClientApp (no
fedpoison handler), Flower's ``start`` signature and ``Result``, federated evaluation, FLTrust
from the server's own data, and ``fedpoison.Adversary`` attached to it.

The in-process runs use fedpoison's grid; one test runs every combination the issue names
through Flower's own ``run_simulation`` (Ray; marked ``ray`` and ``slow``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import stock_app
import torch
from flwr.app import ArrayRecord, ConfigRecord, Error, Message, MetricRecord, RecordDict
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, Result, Strategy

import fedpoison
from fedpoison.aggregators import FLTrust, Krum, TrimmedMean
from fedpoison.attacks import ALIE, SignFlip
from fedpoison.engines.flower_internals import set_server_identity
from fedpoison.strategies.client_eval import aggregate_evaluations
from fedpoison.strategies.sampling import NodeSampling

ROUNDS = 2
INITIAL = ArrayRecord(stock_app.model().state_dict())


def _root() -> fedpoison.RootTrainer:
    """FLTrust's root set: 100 digits the server holds itself (partition 17)."""
    x, y = stock_app.digits(17)
    procedure = fedpoison.LocalTraining(lr=0.5, local_steps=5, batch_size=100)
    return fedpoison.RootTrainer(stock_app.model(), x, y, procedure, seed=0)


def _run(make: Callable[[], Strategy], runner: Callable = stock_app.run_inline) -> dict[str, Any]:
    """Start ``make()`` on a stock app; its Result, the strategy and the evaluate_fn calls."""
    out: dict[str, Any] = {"evaluated": []}

    def central(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        out["evaluated"].append(server_round)
        return MetricRecord({"norm": float(stock_app.flat(arrays).norm())})

    def main(grid: Grid) -> None:
        out["strategy"] = strategy = make()
        out["result"] = strategy.start(
            grid=grid, initial_arrays=INITIAL, num_rounds=ROUNDS, evaluate_fn=central
        )

    runner(main)
    return out


# Flower's engine registers nodes asynchronously: the population is the nodes connected when
# round 1 starts, so wait for all of them
ALL = {"min_available_nodes": stock_app.NUM_NODES}


def _robust(rule: Any, **kw: Any) -> Callable[[], Strategy]:
    return lambda: fedpoison.RobustStrategy(rule, fraction_evaluate=0.5, seed=3, **ALL, **kw)


RULES = {
    "krum": _robust(Krum()),
    "trimmed_mean": _robust(TrimmedMean(beta=0.2)),
    "fltrust": lambda: fedpoison.RobustStrategy(FLTrust(), root=_root(), seed=3, **ALL),
}


@pytest.mark.parametrize("name", sorted(RULES))
def test_flowers_start_and_result_with_a_stock_client_app(name: str) -> None:
    out = _run(RULES[name])
    result: Result = out["result"]
    strategy: fedpoison.RobustStrategy = out["strategy"]
    assert out["evaluated"] == [0, 1, 2]  # Flower: before round 1, then after each round
    assert sorted(result.evaluate_metrics_serverapp) == [0, 1, 2]
    assert sorted(result.train_metrics_clientapp) == [1, 2]
    assert not torch.equal(stock_app.flat(result.arrays), stock_app.flat(INITIAL))
    assert [r.round for r in strategy.history] == [1, 2]
    for record in strategy.history:
        assert record.participants == stock_app.NUM_NODES and record.invalid == []
        assert record.clients == list(range(stock_app.NUM_NODES))
        assert len(record.weights) == stock_app.NUM_NODES
    if name == "krum":  # Krum keeps one client: weight 1 for it, 0 for the others
        assert sorted(strategy.history[0].weights) == [0.0] * 5 + [1.0]
        assert result.train_metrics_clientapp[1]["rejected"] == 5


def test_federated_evaluation_is_a_weighted_mean_of_a_seeded_sample() -> None:
    out = _run(RULES["trimmed_mean"])
    result: Result = out["result"]
    assert sorted(result.evaluate_metrics_clientapp) == [1, 2]
    metrics = result.evaluate_metrics_clientapp[2]
    assert metrics["evaluated"] == 3 and metrics["unusable"] == 0  # 0.5 of 6 nodes
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert out["strategy"].history[1].federated == dict(metrics)
    assert "federated_accuracy" in out["strategy"].history[1].to_dict()
    again = _run(RULES["trimmed_mean"])["result"]
    assert torch.equal(stock_app.flat(again.arrays), stock_app.flat(result.arrays))
    assert again.evaluate_metrics_clientapp[2] == metrics


def test_no_federated_evaluation_with_fraction_evaluate_zero() -> None:
    out = _run(lambda: fedpoison.RobustStrategy("median", fraction_evaluate=0.0))
    assert dict(out["result"].evaluate_metrics_clientapp) == {}


def test_fraction_train_samples_like_flowers_fedavg() -> None:
    out = _run(lambda: fedpoison.RobustStrategy("fedavg", fraction_train=0.5, min_train_nodes=2))
    assert [r.participants for r in out["strategy"].history] == [3, 3]
    clients = [tuple(r.clients) for r in out["strategy"].history]
    assert clients == [
        tuple(r.clients)
        for r in _run(
            lambda: fedpoison.RobustStrategy("fedavg", fraction_train=0.5, min_train_nodes=2)
        )["strategy"].history
    ]


def test_adversary_attached_to_a_robust_strategy_is_scored() -> None:
    def make() -> Strategy:
        robust = fedpoison.RobustStrategy(TrimmedMean(beta=0.34), fraction_evaluate=0.0, seed=3)
        return fedpoison.Adversary(robust, ALIE(), num_malicious=2, seed=0)

    clean = _run(_robust(TrimmedMean(beta=0.34)))
    attacked = _run(make)
    adversary: fedpoison.Adversary = attacked["strategy"]
    robust = adversary.strategy
    assert isinstance(robust, fedpoison.RobustStrategy) and adversary.attached
    assert len(adversary.malicious_nodes) == 2
    assert robust.known_malicious == adversary.malicious_nodes
    assert [h["malicious_replies"] for h in adversary.history] == [
        sorted(adversary.malicious_nodes)
    ] * ROUNDS
    for record in robust.history:
        assert record.malicious_participants == 2 and record.f == 2
        assert set(record.detection) >= {"tp", "fp", "fn", "tn"}
    metrics = attacked["result"].train_metrics_clientapp[1]
    assert metrics["malicious_participants"] == 2 and "tp" in metrics
    assert not torch.equal(
        stock_app.flat(clean["result"].arrays), stock_app.flat(attacked["result"].arrays)
    )


def test_adversary_attached_window_and_defense_knowledge() -> None:
    """``start_round`` holds the attack back; a defense-aware attack is allowed only here."""

    def make() -> Strategy:
        robust = fedpoison.RobustStrategy(Krum(), f=1, fraction_evaluate=0.0)
        return fedpoison.Adversary(robust, SignFlip(), malicious=[0, 1], start_round=2)

    adversary = _run(make)["strategy"]
    assert [h["malicious_replies"] for h in adversary.history] == [[], [0, 1]]
    fang = fedpoison.Adversary(
        fedpoison.RobustStrategy(Krum()), "adaptive", num_malicious=1, knows_defense=True
    )
    assert fang.attached
    with pytest.raises(ValueError, match="needs the defense as a fedpoison rule"):
        fedpoison.Adversary(FedAvg(), "adaptive", num_malicious=1, knows_defense=True)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rule": FLTrust()}, r"needs the server's own update: pass root=RootTrainer"),
        ({"rule": "krum", "fraction_train": 1.5}, r"fraction_train must be in \[0, 1\]"),
        ({"rule": "no_such_rule"}, "no_such_rule"),
    ],
)
def test_constructor_errors(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises((ValueError, KeyError), match=match):
        fedpoison.RobustStrategy(**kwargs)


def test_a_defense_bound_the_population_cannot_meet_fails_before_round_1() -> None:
    def make() -> Strategy:
        return fedpoison.Adversary(fedpoison.RobustStrategy(Krum()), "sign_flip", num_malicious=2)

    with pytest.raises(ValueError, match=r"krum: needs n ≥ 2f\+3 = 7, got n=6, f=2.*set f="):
        _run(make)


def test_node_sampling_follows_flowers_fedavg() -> None:
    assert NodeSampling(fraction_train=0.3).train_count(10) == 3
    assert NodeSampling(fraction_train=0.1, min_train_nodes=2).train_count(10) == 2
    assert NodeSampling(num_train_nodes=7).train_count(10) == 7
    assert NodeSampling(fraction_evaluate=0.0).evaluate_count(10) == 0
    assert NodeSampling(fraction_evaluate=0.5, min_evaluate_nodes=8).evaluate_count(10) == 8
    with pytest.raises(ValueError, match="12 clients per round, but only 10 nodes"):
        NodeSampling(num_train_nodes=12).train_count(10)


def test_unusable_evaluation_replies_are_left_out_and_counted() -> None:
    set_server_identity(1)
    ask = Message(RecordDict(), 1, "evaluate", group_id="1")

    def reply(**metrics: Any) -> Message:
        return Message(RecordDict({"metrics": MetricRecord(metrics)}), reply_to=ask)

    good = [
        reply(accuracy=1.0, **{"num-examples": 30}),
        reply(accuracy=0.0, **{"num-examples": 10}),
    ]
    error = Message(Error(code=1, reason="boom"), reply_to=ask)
    zero = reply(accuracy=0.5, **{"num-examples": 0})
    no_metrics = Message(RecordDict({"config": ConfigRecord({"a": 1})}), reply_to=ask)
    metrics = aggregate_evaluations([*good, error, zero, no_metrics])
    assert metrics is not None
    assert metrics["accuracy"] == pytest.approx(0.75)
    assert metrics["evaluated"] == 2 and metrics["unusable"] == 3
    assert aggregate_evaluations([]) is None


@pytest.mark.ray
@pytest.mark.slow
def test_on_flowers_run_simulation() -> None:
    """One Flower simulation (one Ray start) runs each strategy the issue names in turn."""
    strategies: dict[str, Callable[[], Strategy]] = {
        **RULES,
        "adversary-robust": lambda: fedpoison.Adversary(
            fedpoison.RobustStrategy(TrimmedMean(beta=0.34), fraction_evaluate=0.5, **ALL),
            ALIE(),
            num_malicious=2,
        ),
        "adversary-fedavg": lambda: fedpoison.Adversary(
            FedAvg(fraction_evaluate=0.5), SignFlip(), num_malicious=2
        ),
    }
    outs: dict[str, dict[str, Any]] = {}

    def main(grid: Grid) -> None:
        for name, make in strategies.items():
            outs[name] = {}
            strategy = make()
            outs[name]["strategy"] = strategy
            outs[name]["result"] = strategy.start(grid=grid, initial_arrays=INITIAL, num_rounds=2)

    stock_app.run_flower(main)
    assert sorted(outs) == sorted(strategies)
    for name, out in outs.items():
        result: Result = out["result"]
        assert torch.isfinite(stock_app.flat(result.arrays)).all(), name
        assert not torch.equal(stock_app.flat(result.arrays), stock_app.flat(INITIAL)), name
        assert sorted(result.train_metrics_clientapp) == [1, 2], name
    for name in ("krum", "trimmed_mean", "adversary-robust", "adversary-fedavg"):
        assert sorted(outs[name]["result"].evaluate_metrics_clientapp) == [1, 2], name
    for name in ("adversary-robust", "adversary-fedavg"):
        history = outs[name]["strategy"].history
        assert [len(h["malicious_replies"]) for h in history] == [2, 2], name
