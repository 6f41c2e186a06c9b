"""fedpoison.Adversary: the colluding adversary around any Flower strategy.

Unit tests drive the wrapper with hand-built reply messages and a recording strategy; the
end-to-end tests run a stock Flower ClientApp (written like Flower's PyTorch quickstart, no
fedpoison handler) under Flower's FedAvg, once on fedpoison's in-process grid (fast) and
once on Flower's own ``run_simulation`` (Ray; marked ``ray`` and ``slow``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable

import numpy as np
import pytest
import stock_app
import torch
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.serverapp import Grid
from flwr.serverapp.strategy import (
    Bulyan,
    FedAvg,
    FedMedian,
    FedTrimmedAvg,
    Krum,
    MultiKrum,
    Strategy,
)

import fedpoison
from fedpoison.aggregators.pipeline import Defense
from fedpoison.attacks.alie import ALIE
from fedpoison.attacks.base import AdversaryView, MaliciousReplies, UpdateAttack
from fedpoison.attacks.sign_flip import SignFlip
from fedpoison.attacks.spec import build_view
from fedpoison.attacks.threat import ThreatModel
from fedpoison.engines.flower_internals import set_server_identity
from fedpoison.seeding import ADVERSARY, torch_generator
from fedpoison.strategies.adversary import AdversaryStage
from fedpoison.strategies.wrapper import Adversary
from fedpoison.training.flat import ModelLayout, flatten

set_server_identity(1)
GLOBAL = ArrayRecord(
    {"w": Array(np.arange(6, dtype=np.float32).reshape(2, 3)), "b": Array(np.ones(3, np.float32))}
)
LAYOUT = ModelLayout.of(GLOBAL)


class Recording(Strategy):
    """A minimal strategy that records the replies it is given and returns the first one."""

    def __init__(self) -> None:
        self.received: list[list[Message]] = []

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return []

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        self.received.append(list(replies))
        return None, None

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return []

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        return MetricRecord({"evaluated": len(list(replies))})

    def summary(self) -> None:
        pass


class FakeGrid:
    """Only what ``configure_train`` asks of a grid."""

    def __init__(self, nodes: Iterable[int]) -> None:
        self.nodes = list(nodes)

    def get_node_ids(self) -> Iterable[int]:
        return self.nodes


def _reply(node: int, scale: float, num_examples: int = 10, error: bool = False) -> Message:
    ins = Message(RecordDict(), node, "train", group_id="1")
    if error:
        return Message(Error(code=2, reason="boom"), reply_to=ins)
    arrays = ArrayRecord(
        {
            "w": Array(
                np.full((2, 3), scale, np.float32) + np.arange(6, dtype=np.float32).reshape(2, 3)
            ),
            "b": Array(np.full(3, 1.0 + scale, np.float32)),
        }
    )
    metrics = MetricRecord({"num-examples": num_examples, "train-loss": 0.5})
    return Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=ins)


def _flat(msg: Message) -> torch.Tensor:
    return flatten(msg.content["arrays"], LAYOUT).clone()


def _wrap(attack: UpdateAttack | str, malicious: list[int], **kw) -> tuple[Adversary, Recording]:
    inner = Recording()
    adversary = Adversary(inner, attack, malicious=malicious, **kw)
    adversary.configure_train(1, GLOBAL, ConfigRecord(), FakeGrid(range(1, 6)))  # type: ignore[arg-type]
    return adversary, inner


def test_malicious_replies_become_global_plus_crafted_benign_ones_untouched() -> None:
    attack = ALIE()
    adversary, inner = _wrap(attack, [2, 4])
    replies = [_reply(5, 0.5), _reply(2, -1.0), _reply(1, 0.25), _reply(4, 2.0), _reply(3, 0.1)]
    before = [(_flat(r), dict(r.content["metrics"].items())) for r in replies]
    snapshot = copy.deepcopy(GLOBAL)

    adversary.aggregate_train(1, iter(replies))  # any iterable, e.g. Flower's generator

    (got,) = inner.received
    assert [m.metadata.src_node_id for m in got] == [5, 2, 1, 4, 3]  # arrival order kept
    g = flatten(GLOBAL, LAYOUT)
    deltas = {r.metadata.src_node_id: _flat(r) - g for r in replies}
    view = build_view(
        own=torch.stack([deltas[2], deltas[4]]),
        benign=torch.stack([deltas[1], deltas[3], deltas[5]]),
        threat=ThreatModel(knowledge="all"),
        global_weights=g,
        server_lr=1.0,
        generator=torch_generator(0, ADVERSARY, 1),
        server_round=1,
    )
    expected = attack.craft(view).updates
    by_node = {m.metadata.src_node_id: m for m in got}
    torch.testing.assert_close(_flat(by_node[2]), g + expected[0])
    torch.testing.assert_close(_flat(by_node[4]), g + expected[1])
    for node in (1, 3, 5):  # benign: the very same message objects
        assert any(by_node[node] is r for r in replies)
    for r, (flat, metrics) in zip(replies, before, strict=True):  # inputs not mutated
        assert torch.equal(_flat(r), flat) and dict(r.content["metrics"].items()) == metrics
    assert by_node[2] is not replies[1] and by_node[2].metadata.src_node_id == 2
    assert by_node[2].content["metrics"]["train-loss"] == 0.5  # the rest of the content kept
    assert flatten(GLOBAL, LAYOUT).tolist() == flatten(snapshot, LAYOUT).tolist()
    assert adversary.history == [{"round": 1, "malicious_replies": [2, 4]}]


def test_round_without_malicious_replies_passes_through() -> None:
    adversary, inner = _wrap("sign_flip", [4])
    replies = [_reply(1, 0.5), _reply(4, 1.0, error=True), _reply(2, 0.1)]
    adversary.aggregate_train(3, replies)
    assert len(inner.received) == 1 and all(
        a is b for a, b in zip(inner.received[0], replies, strict=True)
    )
    assert adversary.history == [{"round": 3, "malicious_replies": []}]


class Counting(UpdateAttack):
    """Sends zeros and reports 1000 examples per malicious row."""

    name = "counting"
    paper = "test"

    def craft(self, view: AdversaryView) -> MaliciousReplies:
        m = view.num_malicious
        return MaliciousReplies(torch.zeros_like(view.own), torch.full((m,), 1000))


def test_crafted_counts_replace_num_examples_and_own_knowledge_hides_benign() -> None:
    seen: list[AdversaryView] = []

    class Spy(Counting):
        def craft(self, view: AdversaryView) -> MaliciousReplies:
            seen.append(view)
            return super().craft(view)

    adversary, inner = _wrap(Spy(), [1], knowledge="own")
    adversary.aggregate_train(1, [_reply(1, 3.0), _reply(2, 1.0)])
    by_node = {m.metadata.src_node_id: m for m in inner.received[0]}
    assert by_node[1].content["metrics"]["num-examples"] == 1000
    assert by_node[2].content["metrics"]["num-examples"] == 10
    assert torch.equal(_flat(by_node[1]), flatten(GLOBAL, LAYOUT))
    assert seen[0].benign is None and seen[0].num_participants == 2


def test_a_defense_aware_attack_is_checked_against_and_shown_the_whole_pipeline() -> None:
    """Attached to a RobustStrategy with pre-aggregators, the attack's ``check_defense`` and
    its view both get the deployed pipeline (clip, NNM, then Krum), not the rule alone."""
    checked: list[Defense] = []
    seen: list[AdversaryView] = []

    class Spy(Counting):
        def check_defense(self, defense: Defense) -> None:
            checked.append(defense)

        def craft(self, view: AdversaryView) -> MaliciousReplies:
            seen.append(view)
            return super().craft(view)

    robust = fedpoison.RobustStrategy("krum", pre=["clip", "nnm"], f=1)
    Adversary(robust, Spy(), malicious=[1], knows_defense=True)
    assert checked == [robust.defense] and robust.defense.name == "clip+nnm+krum"
    threat = ThreatModel(knowledge="all", knows_defense=True)
    stage = AdversaryStage(Spy(), threat, robust.defense, server_lr=1.0, seed=0)
    updates = torch.arange(12.0).reshape(6, 2)
    malicious = torch.tensor([True, False, False, False, False, False])
    stage(updates, torch.ones(6), malicious, torch.zeros(2), f=1, server_round=1)
    assert seen[0].defense is robust.defense and seen[0].f == 1


def test_unusable_replies_are_left_out_of_the_view_and_passed_on() -> None:
    seen: list[AdversaryView] = []

    class Spy(SignFlip):
        def craft(self, view: AdversaryView) -> MaliciousReplies:
            seen.append(view)
            return super().craft(view)

    adversary, inner = _wrap(Spy(), [1, 4])
    nan = _reply(2, math.nan)
    wrong = _reply(3, 1.0)
    wrong.content["arrays"] = ArrayRecord({"w": Array(np.zeros(2, np.float32))})
    broken = _reply(4, 1.0)
    broken.content["arrays"] = ArrayRecord({"b": Array(np.zeros(3, np.float32))})
    replies = [_reply(1, 1.0), nan, wrong, broken, _reply(5, 0.5)]
    adversary.aggregate_train(1, replies)
    assert seen[0].num_participants == 2 and seen[0].num_malicious == 1
    got = inner.received[0]
    assert all(got[i] is replies[i] for i in (1, 2, 3, 4))  # passed on untouched
    assert adversary.history == [{"round": 1, "malicious_replies": [1]}]


def test_sign_flip_by_name_negates_the_delta() -> None:
    adversary, inner = _wrap("sign_flip", [3])
    adversary.aggregate_train(1, [_reply(3, 2.0)])
    g = flatten(GLOBAL, LAYOUT)
    assert torch.allclose(_flat(inner.received[0][0]), g - 2.0)


def test_num_malicious_is_a_seeded_draw_among_the_grid_nodes() -> None:
    def drawn(seed: int) -> frozenset[int]:
        adversary = Adversary(Recording(), SignFlip(), num_malicious=2, seed=seed)
        assert adversary.malicious_nodes == frozenset()
        adversary.configure_train(1, GLOBAL, ConfigRecord(), FakeGrid([9, 3, 7, 1, 5]))  # type: ignore[arg-type]
        return adversary.malicious_nodes

    assert drawn(0) == drawn(0) and len(drawn(0)) == 2 and drawn(0) <= {1, 3, 5, 7, 9}
    assert len({drawn(s) for s in range(8)}) > 1
    # without a grid, the first round's replies decide
    adversary = Adversary(Recording(), SignFlip(), num_malicious=1)
    adversary._global = GLOBAL
    adversary.aggregate_train(1, [_reply(8, 1.0), _reply(6, 1.0)])
    assert len(adversary.malicious_nodes) == 1 and adversary.malicious_nodes <= {6, 8}
    assert adversary.history[0]["malicious_replies"] == sorted(adversary.malicious_nodes)


def test_other_calls_are_delegated() -> None:
    adversary, _ = _wrap("sign_flip", [1])
    assert adversary.aggregate_evaluate(1, [_reply(1, 0.0)]) == MetricRecord({"evaluated": 1})
    assert list(adversary.configure_evaluate(1, GLOBAL, ConfigRecord(), FakeGrid([1]))) == []  # type: ignore[arg-type]
    adversary.summary()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of"),
        ({"malicious": [1], "num_malicious": 1}, "exactly one of"),
        ({"num_malicious": -1}, "num_malicious"),
        ({"malicious": [1], "knowledge": "some"}, "knowledge"),
        ({"malicious": [1], "attack": ALIE(stat_source="benign"), "knowledge": "own"}, "knowledge"),
        ({"malicious": [1], "attack": "adaptive"}, "knows_defense"),
        ({"malicious": [1], "attack": "adaptive", "knows_defense": True}, "fedpoison rule"),
    ],
)
def test_configuration_errors(kwargs: dict, match: str) -> None:
    kwargs = dict(kwargs)
    attack = kwargs.pop("attack", "alie")
    with pytest.raises(ValueError, match=match):
        Adversary(FedAvg(), attack, **kwargs)


def test_unknown_attack_and_wrong_types() -> None:
    with pytest.raises(KeyError):
        Adversary(FedAvg(), "no_such_attack", malicious=[1])
    with pytest.raises(TypeError):
        Adversary(FedAvg(), object(), malicious=[1])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Adversary(object(), "alie", malicious=[1])  # type: ignore[arg-type]


def test_exported_from_the_package() -> None:
    assert fedpoison.Adversary is Adversary and "Adversary" in fedpoison.__all__
    assert fedpoison.__version__


def test_start_is_flowers_and_drives_the_wrapper(monkeypatch: pytest.MonkeyPatch) -> None:
    """Around a Flower strategy, ``start`` is Flower's loop run on the wrapper itself."""
    calls: list[Strategy] = []
    monkeypatch.setattr(Strategy, "start", lambda self, *a, **k: calls.append(self))
    adversary, _ = _wrap("sign_flip", [1])
    adversary.start(FakeGrid([1, 2]), GLOBAL, num_rounds=1)  # type: ignore[arg-type]
    assert calls == [adversary]


# -- end to end: a stock Flower ClientApp and ServerApp --------------------------------------


def _main(
    attack: UpdateAttack | str | None, out: dict, make: Callable[[], Strategy] | None = None
) -> Callable[[Grid], None]:
    def main(grid: Grid) -> None:
        strategy: Strategy = make() if make is not None else FedAvg(fraction_evaluate=0.0)
        if attack is not None:
            strategy = out["adversary"] = fedpoison.Adversary(
                strategy, attack=attack, num_malicious=2, seed=0
            )
        result = strategy.start(
            grid=grid, initial_arrays=ArrayRecord(stock_app.model().state_dict()), num_rounds=2
        )
        out["final"] = stock_app.flat(result.arrays)

    return main


def _check(clean: dict, attacked: dict, sign_flip: bool) -> None:
    start = torch.cat([t.reshape(-1) for t in stock_app.model().state_dict().values()])
    adversary = attacked["adversary"]
    assert len(adversary.malicious_nodes) == 2
    assert [h["malicious_replies"] for h in adversary.history] == [
        sorted(adversary.malicious_nodes)
    ] * 2
    assert not torch.allclose(clean["final"], attacked["final"])
    if sign_flip:  # 2 of 6 flipped: FedAvg moves a third as far along the benign direction
        moved = (attacked["final"] - start).norm()
        assert moved < 0.8 * (clean["final"] - start).norm()
        assert (attacked["final"] - clean["final"]).norm() > moved


def _inline(attack: UpdateAttack | str | None, make: Callable[[], Strategy] | None = None) -> dict:
    out: dict = {}
    stock_app.run_inline(_main(attack, out, make))
    return out


def test_end_to_end_on_the_in_process_grid() -> None:
    clean = _inline(None)
    flipped = _inline("sign_flip")
    assert flipped["adversary"].malicious_nodes <= set(range(1, stock_app.NUM_NODES + 1))
    _check(clean, flipped, sign_flip=True)
    assert _inline("sign_flip")["adversary"].malicious_nodes == flipped["adversary"].malicious_nodes
    _check(clean, _inline(ALIE()), sign_flip=False)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Krum(fraction_evaluate=0.0, num_malicious_nodes=2),
        lambda: MultiKrum(fraction_evaluate=0.0, num_malicious_nodes=2, num_nodes_to_select=3),
        lambda: FedTrimmedAvg(fraction_evaluate=0.0, beta=0.34),
        lambda: FedMedian(fraction_evaluate=0.0),
        lambda: Bulyan(fraction_evaluate=0.0, num_malicious_nodes=0),
    ],
    ids=["Krum", "MultiKrum", "FedTrimmedAvg", "FedMedian", "Bulyan"],
)
def test_wraps_flowers_robust_strategies(make: Callable[[], Strategy]) -> None:
    clean, attacked = _inline(None, make), _inline(ALIE(), make)
    assert [len(h["malicious_replies"]) for h in attacked["adversary"].history] == [2, 2]
    assert torch.isfinite(attacked["final"]).all()
    assert not torch.equal(clean["final"], attacked["final"])


@pytest.mark.ray
@pytest.mark.slow
def test_end_to_end_on_flowers_run_simulation() -> None:
    def simulate(attack: UpdateAttack | str | None) -> dict:
        out: dict = {}
        stock_app.run_flower(_main(attack, out))
        return out

    clean, flipped = simulate(None), simulate("sign_flip")
    _check(clean, flipped, sign_flip=True)
