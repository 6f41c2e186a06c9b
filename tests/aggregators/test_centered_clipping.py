"""Centered clipping (docs/conventions.md §C12): the shared rule checks, the naive oracle, the
centre kept across rounds, unanimity within τ and the bounded influence of each row."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, normal, rows, seeds
from rule_tester import RuleTester, context, data, matrices, with_byzantine_rows

import fedpoison.aggregators as agg
from fedpoison.aggregators.centered_clipping import CenteredClipping


class TestCenteredClipping(RuleTester):
    rule = CenteredClipping


def centered_clipping_naive(pts, center, tau, iters) -> list[float]:
    v = list(center)
    for _ in range(iters):
        step = [0.0] * len(v)
        for p in pts:
            diff = [a - b for a, b in zip(p, v, strict=True)]
            norm = math.sqrt(sum(t * t for t in diff))
            scale = 1.0 if norm == 0 else min(1.0, tau / norm)
            step = [s + t * scale / len(pts) for s, t in zip(step, diff, strict=True)]
        v = [a + b for a, b in zip(v, step, strict=True)]
    return v


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 8),
    d=st.integers(1, 5),
    seed=seeds,
    tau=st.floats(0.1, 5),
    iters=st.integers(1, 3),
)
def test_centered_clipping_matches_oracle(
    n: int, d: int, seed: int, tau: float, iters: int
) -> None:
    x = normal(n + 1, d, seed)
    center, pts = x[0], x[1:]
    got = agg.centered_clipping(pts, center, tau=tau, iters=iters)
    close(got, centered_clipping_naive(rows(pts), center.tolist(), tau, iters))


def test_centered_clipping_zero_distance_scale_is_one() -> None:
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    assert agg.centered_clipping(x, torch.tensor([1.0, 2.0]), tau=0.5).tolist() == [1.0, 2.0]


def test_centered_clipping_keeps_the_centre_across_rounds() -> None:
    x1, x2 = data(seed=1), data(seed=2) + 5
    rule = CenteredClipping(tau=1.0)
    v1 = rule(x1, context(x1)).aggregate
    torch.testing.assert_close(v1, agg.centered_clipping(x1, None, tau=1.0))
    saved = rule.state_dict()
    v2 = rule(x2, context(x2)).aggregate
    torch.testing.assert_close(v2, agg.centered_clipping(x2, v1, tau=1.0))
    fresh = CenteredClipping(tau=1.0)
    fresh.load_state_dict(saved)
    torch.testing.assert_close(fresh(x2, context(x2)).aggregate, v2)


@settings(max_examples=10, deadline=None)
@given(case=matrices())
def test_unanimity_within_tau(case) -> None:
    """Equal rows within τ of the centre (0 in the first round) are returned unchanged."""
    x, f = case
    same = x[:1].expand_as(x).clone()
    rule = CenteredClipping(tau=float(same[0].norm()) + 1.0)
    torch.testing.assert_close(rule(same, context(same, f)).aggregate, same[0])


@settings(max_examples=30, deadline=None)
@given(
    case=matrices(min_rows_for_f=lambda f: f + 1),
    byzantine=st.lists(st.floats(-1e9, 1e9), min_size=12, max_size=12),
    tau=st.floats(0.1, 10),
)
def test_each_row_moves_the_aggregate_by_at_most_tau_over_n(case, byzantine, tau) -> None:
    """With L = 1, f rows changed arbitrarily move the result by at most 2fτ/n."""
    x, f = case
    n = x.shape[0]
    y = with_byzantine_rows(x, f, byzantine)
    center = x.mean(dim=0)
    moved = agg.centered_clipping(x, center, tau=tau) - agg.centered_clipping(y, center, tau=tau)
    assert float(moved.norm()) <= 2 * f * tau / n * (1 + 1e-9) + 1e-12
