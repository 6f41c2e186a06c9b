"""Geometric median by smoothed Weiszfeld, RFA (docs/conventions.md §C11): the shared rule checks,
the golden, the naive oracle, the ``previous`` initialisation as state and its weights."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, normal, rows, seeds, sqdist
from rule_tester import RuleTester, context, data

import fedpoison.aggregators as agg
from fedpoison.aggregators.geometric_median import GeometricMedian


class TestGeometricMedian(RuleTester):
    rule = GeometricMedian
    bound = "2f+1"


def weiszfeld_naive(pts, iters, nu, init) -> list[float]:
    n, d = len(pts), len(pts[0])
    z = [0.0] * d if init == "zero" else [sum(c) / n for c in zip(*pts, strict=True)]
    for _ in range(iters):
        betas = [(1 / n) / max(nu, math.sqrt(sqdist(z, p))) for p in pts]
        z = [sum(b * p[k] for b, p in zip(betas, pts, strict=True)) / sum(betas) for k in range(d)]
    return z


def test_geometric_median_golden() -> None:
    x = torch.tensor([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])
    got = agg.geometric_median(x, iters=3, nu=0.1, init="zero")
    close(got, [3.7879, 4.7879, 5.7879], tol=1e-4)
    close(agg.geometric_median(x, iters=3, nu=0.1, init="mean"), [4, 5, 6], tol=1e-6)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 8), d=st.integers(1, 5), seed=seeds, iters=st.integers(0, 4))
def test_geometric_median_matches_oracle(n: int, d: int, seed: int, iters: int) -> None:
    x = normal(n, d, seed)
    for init in ("mean", "zero"):
        close(
            agg.geometric_median(x, iters=iters, nu=0.1, init=init),
            weiszfeld_naive(rows(x), iters, 0.1, init),
        )


def test_geometric_median_previous_init_is_state() -> None:
    x1, x2 = data(seed=1), data(seed=2)
    rule = GeometricMedian(init="previous", iters=1)
    z1 = rule(x1, context(x1)).aggregate
    torch.testing.assert_close(z1, agg.geometric_median(x1, iters=1, init="zero"))
    z2 = rule(x2, context(x2)).aggregate
    torch.testing.assert_close(z2, agg.geometric_median(x2, iters=1, init="previous", previous=z1))
    with pytest.raises(ValueError, match="previous"):
        agg.geometric_median(x1, init="previous")
    first = GeometricMedian(init="previous", iters=1)  # this variant's state round trip
    first(x1, context(x1))
    restored = GeometricMedian(init="previous", iters=1)
    restored.load_state_dict(first.state_dict())
    torch.testing.assert_close(restored(x2, context(x2)).aggregate, z2)


def test_geometric_median_weights_are_its_coefficients() -> None:
    x = data()
    result = GeometricMedian()(x, context(x))
    torch.testing.assert_close(result.aggregate, result.weights @ x)
    torch.testing.assert_close(result.weights.sum(), torch.tensor(1.0, dtype=x.dtype))
