"""FLTrust (docs/conventions.md §C13): the shared rule checks, the naive oracle, the skipped round,
trust shares as weights, the output bounded by ‖g_0‖ and unanimity when g_0 agrees."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, normal, rows, seeds
from rule_tester import RuleTester, context, data, matrices, with_byzantine_rows

import fedpoison.aggregators as agg
from fedpoison.aggregators.fltrust import FLTrust


class TestFLTrust(RuleTester):
    """Not unanimous: the aggregate is rescaled to the norm of the server's update g_0."""

    rule = FLTrust


def fltrust_naive(pts, g0) -> list[float]:
    n0 = math.sqrt(sum(t * t for t in g0))
    total, acc = 0.0, [0.0] * len(g0)
    for p in pts:
        ni = math.sqrt(sum(t * t for t in p))
        cos = sum(a * b for a, b in zip(p, g0, strict=True)) / (ni * n0)
        ts = max(0.0, cos)
        total += ts
        acc = [a + ts * (n0 / ni) * t for a, t in zip(acc, p, strict=True)]
    return [a / total for a in acc]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 8), d=st.integers(2, 5), seed=seeds)
def test_fltrust_matches_oracle(n: int, d: int, seed: int) -> None:
    x = normal(n + 1, d, seed)
    g0, pts = x[0], x[1:]
    trusted = any(float(p @ g0) > 0 for p in pts)
    got = agg.fltrust(pts, g0)
    if trusted:
        close(got, fltrust_naive(rows(pts), g0.tolist()))
    else:
        assert got.abs().max() == 0


def test_fltrust_all_zero_trust_skips_the_round() -> None:
    x = data()
    result = FLTrust()(x, context(x, server_update=torch.zeros(6, dtype=x.dtype)))
    assert result.info == {"skipped": 1.0}
    assert not bool(result.aggregate.any()) and not bool(result.weights.any())
    opposed = FLTrust()(x.abs(), context(x, server_update=-torch.ones(6, dtype=x.dtype)))
    assert opposed.info == {"skipped": 1.0}


def test_fltrust_weights_are_trust_shares() -> None:
    x = data()
    g0 = x.mean(dim=0)
    result = FLTrust()(x, context(x, server_update=g0))
    cos = (x @ g0) / (x.norm(dim=1) * g0.norm())
    torch.testing.assert_close(result.weights, cos.clamp_min(0) / cos.clamp_min(0).sum())
    assert FLTrust.needs_server_update


@settings(max_examples=30, deadline=None)
@given(
    case=matrices(min_rows_for_f=lambda f: f + 1),
    byzantine=st.lists(st.floats(-1e9, 1e9), min_size=12, max_size=12),
)
def test_fltrust_output_never_exceeds_the_server_update_norm(case, byzantine) -> None:
    x, f = case
    y = with_byzantine_rows(x, f, byzantine)
    g0 = x[-1]
    assert float(agg.fltrust(y, g0).norm()) <= float(g0.norm()) * (1 + 1e-9)


@settings(max_examples=10, deadline=None)
@given(case=matrices())
def test_unanimity_when_the_server_update_agrees(case) -> None:
    x, f = case
    same = x[:1].expand_as(x).clone()
    result = FLTrust()(same, context(same, f, server_update=same[0]))
    torch.testing.assert_close(result.aggregate, same[0], rtol=1e-8, atol=1e-8)
