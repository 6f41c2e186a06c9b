"""Worker momentum's recursion (REFERENCES D26): the paper sequences, per-array handling."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.training.momentum import WorkerMomentum


def _sequence(momentum: WorkerMomentum, rounds: int) -> list[float]:
    buffer, out = None, []
    for _ in range(rounds):
        buffer = momentum.step(buffer, torch.ones(1, dtype=torch.float64))
        out.append(float(buffer))
    return out


def test_ema_of_a_constant_update_is_one_minus_beta_to_the_t():
    assert _sequence(WorkerMomentum(0.9), 5) == pytest.approx([1 - 0.9**t for t in range(1, 6)])


def test_heavy_ball_is_the_ema_over_one_minus_beta():
    heavy = _sequence(WorkerMomentum(0.9, dampening=0.0), 5)
    assert heavy == pytest.approx([(1 - 0.9**t) / 0.1 for t in range(1, 6)])


def test_dampened_heavy_ball_weights_the_update_by_one_minus_delta():
    assert _sequence(WorkerMomentum(0.5, dampening=0.25), 2) == pytest.approx([0.75, 1.125])


@settings(max_examples=30, deadline=None)
@given(
    beta=st.floats(0.0, 0.99),
    rounds=st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=6),
)
def test_step_equals_the_naive_loop_and_does_not_mutate(beta, rounds):
    momentum = WorkerMomentum(beta)
    buffer: torch.Tensor | None = None
    naive = 0.0
    for g in rounds:
        update = torch.tensor([g], dtype=torch.float64)
        before = None if buffer is None else buffer.clone()
        new = momentum.step(buffer, update)
        if before is not None:
            assert torch.equal(buffer, before)
        assert float(update) == g
        naive = beta * naive + (1 - beta) * g
        buffer = new
        assert float(buffer) == pytest.approx(naive, abs=1e-9)


def test_apply_sends_global_plus_momentum_and_leaves_integer_arrays_as_trained():
    momentum = WorkerMomentum(0.9)
    start = [torch.zeros(3), torch.tensor(0)]
    trained = {"w": torch.tensor([1.0, 2.0, 3.0]), "steps": torch.tensor(7)}
    sent, buffers = momentum.apply(trained, start, {})
    assert torch.allclose(sent["w"], torch.tensor([0.1, 0.2, 0.3]))
    assert torch.equal(sent["steps"], torch.tensor(7)) and list(buffers) == ["w"]
    again, buffers = momentum.apply(trained, [sent["w"], torch.tensor(7)], buffers)
    # Δ = trained − global = (1, 2, 3) − 0.1·(1, 2, 3); m = 0.9·0.1·g + 0.1·0.9·g = 0.18·g
    assert torch.allclose(buffers["w"], torch.tensor([0.18, 0.36, 0.54]))
    assert torch.allclose(again["w"], sent["w"] + buffers["w"])


def test_zero_beta_is_inactive():
    assert not WorkerMomentum().active and WorkerMomentum(0.5).active


@pytest.mark.parametrize(
    ("beta", "dampening", "match"),
    [(1.0, None, "β must be in"), (-0.1, None, "β must be in"), (0.5, 1.0, "δ must be in")],
)
def test_out_of_range_is_refused(beta, dampening, match):
    with pytest.raises(ValueError, match=match):
        WorkerMomentum(beta, dampening)
