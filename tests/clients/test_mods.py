"""fedpoison.clients.poison_mod: per-client update attacks and reply faults as a Flower Mod.

The mod is called directly, as Flower's ``ClientApp`` calls a mod, with a train ``Message``,
a ``Context`` carrying the node's ``partition-id`` and a ``call_next`` standing for a stock
quickstart-style handler (it replies ``arrays`` + ``metrics["num-examples"]``); one test goes
through a real ``ClientApp(mods=[...])``. Oracles are the attacks' formulas on the node's own
delta, written out here.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Context,
    Error,
    Message,
    MetricRecord,
    RecordDict,
)
from flwr.clientapp import ClientApp

from fedpoison.attacks import (
    ALIE,
    Backdoor,
    Gaussian,
    Malformed,
    NumExamplesInflation,
    Scaling,
    SignFlip,
    ThreatModel,
    UpdateAttack,
)
from fedpoison.clients import PoisonMod, poison_mod
from fedpoison.engines.flower_internals import set_server_identity
from fedpoison.seeding import ADVERSARY, REPLY_ATTACK, torch_generator
from fedpoison.training.flat import ModelLayout, flatten

set_server_identity(1)
GLOBAL = ArrayRecord(
    {"w": Array(np.arange(6, dtype=np.float32).reshape(2, 3)), "b": Array(np.ones(3, np.float32))}
)
LAYOUT = ModelLayout.of(GLOBAL)
G = flatten(GLOBAL, LAYOUT).clone()
MALICIOUS = [1, 3]


def train_message(server_round: int, arrays: ArrayRecord = GLOBAL) -> Message:
    config = ConfigRecord({"server-round": server_round, "lr": 0.1})
    return Message(
        RecordDict({"arrays": arrays, "config": config}), 7, "train", group_id=str(server_round)
    )


def context(pid: int) -> Context:
    return Context(
        run_id=1,
        node_id=pid + 1,
        node_config={"partition-id": pid},
        state=RecordDict(),
        run_config={},
    )


def honest_delta(pid: int) -> torch.Tensor:
    """What partition ``pid``'s local training moves the model by (distinct per partition)."""
    return torch.linspace(-1.0, 1.0, LAYOUT.dim) * (pid + 1) + 0.25


def handler(msg: Message, ctx: Context) -> Message:
    """A stock train handler: the received model moved by the partition's delta."""
    pid = int(ctx.node_config["partition-id"])
    trained = flatten(msg.content["arrays"], LAYOUT) + honest_delta(pid)
    w, b = trained[:6].reshape(2, 3).numpy(), trained[6:].numpy()
    content = RecordDict(
        {
            "arrays": ArrayRecord({"w": Array(w), "b": Array(b)}),
            "metrics": MetricRecord({"num-examples": 50 + pid, "train-loss": 0.5}),
        }
    )
    return Message(content, reply_to=msg)


def call(mod: PoisonMod, pid: int, server_round: int = 1) -> tuple[Message, Message]:
    """``(honest reply, what the mod returns)`` for partition ``pid``."""
    honest: list[Message] = []

    def call_next(msg: Message, ctx: Context) -> Message:
        honest.append(handler(msg, ctx))
        return honest[-1]

    out = mod(train_message(server_round), context(pid), call_next)
    assert len(honest) == 1  # the handler always runs, once
    return honest[0], out


def sent(reply: Message) -> torch.Tensor:
    return flatten(reply.content["arrays"], LAYOUT).clone()


def gaussian_row(pid: int, server_round: int, seed: int = 0) -> torch.Tensor:
    gen = torch_generator(seed, ADVERSARY, server_round, pid)
    return torch.randn((1, LAYOUT.dim), generator=gen)[0] * math.sqrt(200.0)


FORMULAS: dict[str, tuple[UpdateAttack, Callable[[int, int], torch.Tensor]]] = {
    "sign_flip": (SignFlip(scale=2.0), lambda pid, r: -2.0 * honest_delta(pid)),
    "gaussian": (Gaussian(), gaussian_row),
    "scaling": (Scaling(gamma=5.0), lambda pid, r: 5.0 * honest_delta(pid)),
    "num_examples_inflation": (NumExamplesInflation(1000), lambda pid, r: honest_delta(pid)),
}


@pytest.mark.parametrize("name", list(FORMULAS))
def test_malicious_partitions_send_the_attack_on_their_own_delta(name: str) -> None:
    attack, formula = FORMULAS[name]
    mod = poison_mod(attack, malicious=MALICIOUS, seed=0)
    for pid in MALICIOUS:
        for server_round in (1, 2):
            honest, out = call(mod, pid, server_round)
            assert out is not honest
            for field in ("message_type", "src_node_id", "dst_node_id", "reply_to_message_id"):
                assert getattr(out.metadata, field) == getattr(honest.metadata, field)
            torch.testing.assert_close(sent(out), G + formula(pid, server_round))
            assert tuple(out.content["arrays"]["w"].shape) == (2, 3)  # the global layout
            count = 1000 if name == "num_examples_inflation" else 50 + pid
            assert out.content["metrics"]["num-examples"] == count
            assert out.content["metrics"]["train-loss"] == 0.5  # the rest of the reply kept
            # the handler's reply (the caller's object) is not modified
            torch.testing.assert_close(sent(honest), G + honest_delta(pid))
            assert honest.content["metrics"]["num-examples"] == 50 + pid


@pytest.mark.parametrize("name", list(FORMULAS))
def test_benign_partitions_and_inactive_rounds_are_untouched(name: str) -> None:
    attack = FORMULAS[name][0]
    mod = poison_mod(attack, malicious=MALICIOUS, start_round=2, end_round=3)
    for pid in (0, 2, 4):  # benign
        honest, out = call(mod, pid, 2)
        assert out is honest
    for server_round in (1, 4):  # outside the window
        honest, out = call(mod, 1, server_round)
        assert out is honest
    honest, out = call(mod, 1, 3)
    assert out is not honest


def test_deterministic_per_seed_round_and_partition() -> None:
    def noise(seed: int, pid: int, server_round: int) -> torch.Tensor:
        return sent(call(poison_mod(Gaussian(), malicious=[1, 2], seed=seed), pid, server_round)[1])

    assert torch.equal(noise(0, 1, 1), noise(0, 1, 1))
    others = [noise(1, 1, 1), noise(0, 2, 1), noise(0, 1, 2)]
    assert all(not torch.allclose(noise(0, 1, 1), other) for other in others)


def test_malformed_corrupts_the_reply_as_fedpoisons_client_app_does() -> None:
    faults = ["nan", "huge_examples", "wrong_shape", "no_metrics"]
    mod = poison_mod(Malformed(faults), malicious=MALICIOUS, seed=3)
    for pid in MALICIOUS:
        for server_round in (1, 2, 3):
            honest, out = call(mod, pid, server_round)
            gen = torch_generator(3, REPLY_ATTACK, server_round, pid)
            expected = Malformed(faults).corrupt(honest.content, gen)
            assert set(out.content.keys()) == set(expected.keys())
            for key in ("arrays", "metrics"):
                if key in expected:
                    got, want = out.content[key], expected[key]
                    assert {k: v for k, v in got.items()} == {k: v for k, v in want.items()}
            torch.testing.assert_close(sent(honest), G + honest_delta(pid))  # not modified
    honest, out = call(mod, 0)  # benign
    assert out is honest


def test_a_crashing_fault_raises_for_flower_to_turn_into_an_error_reply() -> None:
    mod = poison_mod(Malformed(["crash"]), malicious=[0])
    with pytest.raises(RuntimeError, match="simulated client crash"):
        mod(train_message(1), context(0), handler)
    assert isinstance(poison_mod("malformed", malicious=[0]).attack, Malformed)  # type: ignore[attr-defined]


def test_error_replies_replies_without_arrays_and_other_messages_pass_through() -> None:
    mod = poison_mod("sign_flip", malicious=[0])
    msg = train_message(1)
    error = Message(Error(code=2, reason="boom"), reply_to=msg)
    bare = Message(RecordDict({"metrics": MetricRecord({"num-examples": 3})}), reply_to=msg)
    wrong = Message(
        RecordDict({"arrays": ArrayRecord({"w": Array(np.zeros(2, np.float32))})}), reply_to=msg
    )
    for reply in (error, bare, wrong):
        assert mod(msg, context(0), lambda m, c, r=reply: r) is reply
    evaluate = Message(RecordDict({"arrays": GLOBAL}), 7, "evaluate", group_id="1")
    reply = Message(RecordDict({"arrays": GLOBAL}), reply_to=evaluate)
    assert mod(evaluate, Context(1, 1, {}, RecordDict(), {}), lambda m, c: reply) is reply


def test_through_a_stock_client_app() -> None:
    app = ClientApp(mods=[poison_mod("sign_flip", num_malicious=2, num_partitions=5, seed=0)])

    @app.train()
    def train(msg: Message, ctx: Context) -> Message:
        return handler(msg, ctx)

    bad = ThreatModel(num_malicious=2).malicious_ids(5, 0)
    for pid in range(5):
        out = app(train_message(1), context(pid))
        sign = -1.0 if pid in bad else 1.0
        torch.testing.assert_close(sent(out), G + sign * honest_delta(pid))


@pytest.mark.parametrize(("k", "n", "seed"), [(2, 10, 0), (3, 10, 7), (1, 4, 2), (0, 5, 0)])
def test_num_malicious_picks_the_partitions_the_cli_picks(k: int, n: int, seed: int) -> None:
    cli = ThreatModel(num_malicious=k).malicious_ids(n, seed)
    mod = poison_mod("sign_flip", num_malicious=k, num_partitions=n, seed=seed)
    assert mod.partitions.ids == cli
    threat = ThreatModel(fraction=0.3, start_round=2)
    by_threat = poison_mod("sign_flip", threat=threat, num_partitions=n, seed=seed)
    assert by_threat.partitions.ids == threat.malicious_ids(n, seed)
    assert not by_threat.partitions.threat.active(1)


@pytest.mark.parametrize(
    "attack",
    [
        "alie",
        ALIE(),
        "ipm",
        "min_max",
        "min_sum",
        "fang_krum",
        "fang_trim",
        "adaptive",
        Scaling(),  # γ = n/η needs the round's participant count
        Gaussian(mode="fang"),  # statistics of several updates
        NumExamplesInflation(base=ALIE()),
    ],
    ids=repr,
)
def test_collusion_attacks_are_refused_pointing_to_the_server_side_adversary(
    attack: UpdateAttack | str,
) -> None:
    with pytest.raises(ValueError, match=r"needs more than one client.*fedpoison\.Adversary"):
        poison_mod(attack, malicious=[0])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({}, ValueError, "exactly one of"),
        ({"malicious": [1], "num_malicious": 1}, ValueError, "exactly one of"),
        ({"num_malicious": 2}, ValueError, "num_partitions"),
        ({"num_malicious": 11, "num_partitions": 10}, ValueError, "num_malicious"),
        ({"num_malicious": -1, "num_partitions": 10}, ValueError, "num_malicious"),
        ({"malicious": [-1]}, ValueError, "≥ 0"),
        ({"malicious": [10], "num_partitions": 10}, ValueError, "outside"),
        (
            {"threat": ThreatModel(num_malicious=1), "num_partitions": 3, "start_round": 2},
            ValueError,
            "on the ThreatModel",
        ),
        ({"malicious": [1], "start_round": 3, "end_round": 2}, ValueError, "start_round"),
        ({"malicious": [1], "attack": "label_flip"}, TypeError, "poison_data"),
        ({"malicious": [1], "attack": Backdoor()}, TypeError, "data attack"),
        ({"malicious": [1], "attack": object()}, TypeError, "UpdateAttack"),
        ({"malicious": [1], "attack": "no_such_attack"}, KeyError, "no_such_attack"),
    ],
)
def test_configuration_errors(kwargs: dict, error: type[Exception], match: str) -> None:
    kwargs = dict(kwargs)
    attack = kwargs.pop("attack", "sign_flip")
    with pytest.raises(error, match=match):
        poison_mod(attack, **kwargs)


def test_a_node_without_partition_id_or_a_message_without_round_is_an_error() -> None:
    mod = poison_mod("sign_flip", malicious=[0])
    with pytest.raises(ValueError, match="partition-id"):
        mod(train_message(1), Context(1, 1, {}, RecordDict(), {}), handler)
    no_round = Message(RecordDict({"arrays": GLOBAL}), 7, "train", group_id="1")
    with pytest.raises(ValueError, match="server-round"):
        mod(no_round, context(0), handler)
    assert mod(no_round, context(1), handler).content["arrays"] is not None  # benign: no need


def _per_client_instances() -> list[UpdateAttack]:
    from fedpoison.attacks import UPDATE_ATTACKS

    defaults = [cls() for _, cls in UPDATE_ATTACKS.items()]
    variants = [Scaling(gamma=3.0), Gaussian(mode="fang"), NumExamplesInflation(base=SignFlip())]
    return [a for a in [*defaults, *variants] if a.per_client()]


@pytest.mark.parametrize("attack", _per_client_instances(), ids=lambda a: a.name)
def test_a_per_client_attacks_row_depends_only_on_its_own_update(attack: UpdateAttack) -> None:
    """What ``per_client()`` promises: row 0 is the same whatever the other rows, the benign
    updates and the participant count are (for the same generator)."""
    from fedpoison.attacks import build_view

    own = torch.randn(2, 5, generator=torch.Generator().manual_seed(0))
    rows = []
    for other, benign, threat in [
        (own[1], torch.zeros(0, 5), ThreatModel(knowledge="own")),
        (own[1] * -7.0, torch.ones(4, 5), ThreatModel(knowledge="all")),
    ]:
        view = build_view(
            torch.stack([own[0], other]),
            benign,
            threat=threat,
            global_weights=torch.zeros(5),
            server_lr=1.0,
            generator=torch.Generator().manual_seed(1),
        )
        rows.append(attack.craft(view).updates[0])
    assert torch.equal(rows[0], rows[1])
