"""Multi-Krum (docs/conventions.md §C7): the shared rule checks, the naive oracle, mean (not sum),
the extremes of ``m`` and its default."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, multi_krum_naive, normal, rows, seeds
from rule_tester import RuleTester, context, data

import fedpoison.aggregators as agg
from fedpoison.aggregators.multi_krum import MultiKrum


class TestMultiKrum(RuleTester):
    rule = MultiKrum
    bound = "2f+3"


def test_multi_krum_is_a_mean_not_a_sum() -> None:
    pts = rows(normal(9, 3, 1))
    spec, wrong = multi_krum_naive(pts, 2), multi_krum_naive(pts, 2, reduce="sum")
    assert not np.allclose(spec, wrong)
    close(agg.multi_krum(torch.tensor(pts, dtype=torch.float64), 2), spec)


def test_multi_krum_extremes() -> None:
    x = normal(9, 3, 2)
    close(agg.multi_krum(x, 2, m=1), agg.krum(x, 2))
    close(agg.multi_krum(x, 2, m=9), x.mean(0))


@settings(max_examples=40, deadline=None)
@given(f=st.integers(0, 3), extra=st.integers(0, 6), d=st.integers(1, 6), seed=seeds)
def test_multi_krum_matches_oracle(f: int, extra: int, d: int, seed: int) -> None:
    n = 2 * f + 3 + extra
    x = normal(n, d, seed)
    close(agg.multi_krum(x, f), multi_krum_naive(rows(x), f))


def test_multi_krum_next_to_a_huge_row() -> None:
    """See ``test_krum_resolves_inliers_next_to_a_huge_row``."""
    x = normal(9, 5, 0)
    x[0] = 1e30
    close(agg.multi_krum(x, 1, m=4), multi_krum_naive(rows(x), 1, m=4))


def test_multi_krum_default_m_and_weights() -> None:
    x = data()
    result = MultiKrum()(x, context(x, f=2))
    assert int((result.weights > 0).sum()) == 9
    torch.testing.assert_close(result.aggregate, result.weights @ x)
    with pytest.raises(ValueError, match="m=12"):
        MultiKrum(m=12).check(11, 2)


def test_function_preconditions() -> None:
    with pytest.raises(ValueError, match=r"n=6"):
        agg.multi_krum(data(6), 2, m=7)
