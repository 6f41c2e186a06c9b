"""Local DP: each client's reply is global + clip(Δ) + N(0, (z·C)²), seeded per round and client."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, RecordDict

from fedpoison.engines.flower_internals import set_server_identity
from fedpoison.privacy import LocalDP
from fedpoison.privacy.local import privatise
from fedpoison.records import to_record, to_state_dict


def record(*arrays: np.ndarray | torch.Tensor) -> ArrayRecord:
    return to_record({f"p{i}": torch.as_tensor(a) for i, a in enumerate(arrays)})


def flat(r: ArrayRecord) -> torch.Tensor:
    return torch.cat([t.reshape(-1).double() for t in to_state_dict(r).values()])


def test_privatise_clips_the_update_then_adds_z_times_c_noise() -> None:
    rng = np.random.default_rng(0)
    received = record(
        rng.normal(size=(40, 50)).astype(np.float32), rng.normal(size=50).astype(np.float32)
    )
    reply = record(*(a + 10.0 for a in to_state_dict(received).values()))  # ‖Δ‖ ≫ C
    tiny = privatise(
        received,
        reply,
        clip_norm=2.0,
        noise_multiplier=1e-9,
        generator=torch.Generator().manual_seed(1),
    )
    delta = flat(tiny) - flat(received)
    assert delta.norm().item() == pytest.approx(
        2.0, rel=1e-5
    )  # clipped onto the sphere, direction kept
    assert torch.allclose(
        delta / delta.norm(), torch.ones_like(delta) / delta.numel() ** 0.5, atol=1e-5
    )
    same = record(*to_state_dict(received).values())  # Δ = 0: the reply is pure noise of std z·C
    noisy = privatise(
        received,
        same,
        clip_norm=2.0,
        noise_multiplier=1.5,
        generator=torch.Generator().manual_seed(2),
    )
    noise = flat(noisy) - flat(received)
    assert noise.std().item() == pytest.approx(3.0, rel=0.05)
    assert (
        list(to_state_dict(noisy)) == ["p0", "p1"]
        and to_state_dict(noisy)["p0"].dtype == torch.float32
    )


def _train_message(arrays: ArrayRecord, server_round: int) -> Message:
    content = RecordDict({"arrays": arrays, "config": ConfigRecord({"server-round": server_round})})
    return Message(content, dst_node_id=1, message_type="train")


def test_mod_is_seeded_by_round_and_client_and_passes_broken_replies() -> None:
    set_server_identity(1)
    received = record(np.zeros((3, 4), np.float32))
    mod = LocalDP(clip_norm=1.0, noise_multiplier=1.0).client_mods(seed=5)[0]

    def reply_with(arrays: ArrayRecord):  # noqa: ANN202
        return lambda msg, ctx: Message(RecordDict({"arrays": arrays}), reply_to=msg)

    def run(pid: int, server_round: int, arrays: ArrayRecord) -> ArrayRecord:
        ctx = Context(
            run_id=1,
            node_id=pid + 1,
            node_config={"partition-id": pid},
            state=RecordDict(),
            run_config={},
        )
        return mod(_train_message(received, server_round), ctx, reply_with(arrays)).content[
            "arrays"
        ]

    a, b = run(0, 1, received), run(0, 1, received)
    assert torch.equal(flat(a), flat(b))
    assert not torch.equal(flat(run(1, 1, received)), flat(a))
    assert not torch.equal(flat(run(0, 2, received)), flat(a))
    wrong_shape = record(np.zeros(5, np.float32))
    assert run(0, 1, wrong_shape) is wrong_shape  # unreadable: left for the server to reject
