"""Krum (docs/conventions.md §C7): the shared rule checks, the golden, the naive oracle, the wrong
conventions (n−f−1 neighbours, plain distances) and the function's preconditions."""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, krum_naive, krum_scores_naive, normal, rows, seeds
from rule_tester import RuleTester, data

import fedpoison.aggregators as agg
from fedpoison.aggregators.krum import Krum


class TestKrum(RuleTester):
    rule = Krum
    bound = "2f+3"


GOLDEN_KRUM = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [10.0, 10.0]])


def test_krum_golden() -> None:
    close(agg.krum_scores(GOLDEN_KRUM, 1), [2, 2, 2, 2, 343])
    assert agg.krum(GOLDEN_KRUM, 1).tolist() == [0.0, 0.0]  # a four-way tie → lowest index


def test_krum_neighbour_count_matters() -> None:
    """n−f−1 neighbours (FLPoison, ByzFL) picks another row than the paper's n−f−2."""
    pts = [[2, 3], [2, 4], [5, 1], [4, 3], [3, 6]]
    spec, wrong = krum_naive(pts, 1), krum_naive(pts, 1, neighbours=5 - 1 - 1)
    assert spec != wrong
    assert agg.krum(torch.tensor(pts, dtype=torch.float64), 1).tolist() == spec


def test_krum_squared_distances_matter() -> None:
    """Non-squared distances (Fang's text, ALIE code) pick another row."""
    pts = [[1, 3], [5, 2], [5, 4], [0, 3], [3, 0]]
    spec, wrong = krum_naive(pts, 1), krum_naive(pts, 1, squared=False)
    assert spec != wrong
    assert agg.krum(torch.tensor(pts, dtype=torch.float64), 1).tolist() == spec


@settings(max_examples=40, deadline=None)
@given(f=st.integers(0, 3), extra=st.integers(0, 6), d=st.integers(1, 6), seed=seeds)
def test_krum_matches_oracle(f: int, extra: int, d: int, seed: int) -> None:
    n = 2 * f + 3 + extra
    x = normal(n, d, seed)
    pts = rows(x)
    close(agg.krum_scores(x, f), krum_scores_naive(pts, f))
    close(agg.krum(x, f), krum_naive(pts, f))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_krum_resolves_inliers_next_to_a_huge_row(dtype: torch.dtype) -> None:
    """A ±1e30 row drags the column mean far from the honest rows; the distances are then
    recomputed about the most central row, so Krum still finds the best inlier (not merely
    the lowest-index one). Multi-Krum and Bulyan: in their files."""
    x = normal(9, 5, 0)
    x[0] = 1e30
    pts = rows(x.to(dtype))
    spec = krum_naive(pts, 1)
    assert spec != pts[1]  # the best inlier is not simply the first one
    assert agg.krum(x.to(dtype), 1).double().tolist() == spec


def test_extreme_rows_keep_krum_scores_finite() -> None:
    x = data(dtype=torch.float32)
    x[0] = 3e38
    scores = agg.krum_scores(x, 2)
    assert scores.dtype == torch.float64 and bool(torch.isfinite(scores).all())
    assert agg.krum(x, 2).abs().max() < 10


@pytest.mark.parametrize("call", [lambda x: agg.krum(x, 2), lambda x: agg.krum_scores(x, 2)])
def test_function_preconditions(call) -> None:
    with pytest.raises(ValueError, match=r"n=6"):
        call(data(6))


def test_function_refuses_negative_f_and_non_finite() -> None:
    with pytest.raises(ValueError, match="f must be ≥ 0"):
        agg.krum(data(), -1)
    x = data()
    x[2, 2] = float("nan")
    with pytest.raises(ValueError, match=re.escape("NaN/Inf in rows [2]")):
        agg.krum(x, 1)
