"""Meamed (REFERENCES D17): the shared rule checks, the naive oracle (also on tie-heavy grids,
where the row-index tie rule decides), the goldens, the difference from trimmed mean, and the
function's preconditions."""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, grids, median_naive, normal, rows, seeds
from rule_tester import RuleTester, data

import fedpoison.aggregators as agg
from fedpoison.aggregators.meamed import Meamed


class TestMeamed(RuleTester):
    rule = Meamed
    bound = "2f+1"


def meamed_naive(pts: list[list[float]], f: int) -> list[float]:
    """Per coordinate: the n−f values nearest the median (stable: ties → lower row index)."""
    out = []
    for k, m in enumerate(median_naive(pts)):
        col = [p[k] for p in pts]
        kept = sorted(range(len(col)), key=lambda i: (abs(col[i] - m), i))[: len(col) - f]
        out.append(sum(col[i] for i in kept) / len(kept))
    return out


@settings(max_examples=40, deadline=None)
@given(f=st.integers(0, 3), extra=st.integers(0, 6), d=st.integers(1, 6), seed=seeds)
def test_meamed_matches_oracle(f: int, extra: int, d: int, seed: int) -> None:
    x = normal(2 * f + 1 + extra, d, seed)
    close(agg.meamed(x, f), meamed_naive(rows(x), f))


@settings(max_examples=60, deadline=None)
@given(x=grids)
def test_meamed_matches_oracle_with_ties(x: list[list[float]]) -> None:
    """Integer grids: values equally far from the median on both sides are frequent, and the
    lower row index decides which one is kept."""
    t = torch.tensor(x, dtype=torch.float64)
    for f in range((len(x) - 1) // 2 + 1):
        close(agg.meamed(t, f), meamed_naive(x, f))
        close(agg.meamed(t.float(), f), meamed_naive(x, f), tol=1e-6)


def test_meamed_goldens() -> None:
    """D17: [0, 1, 2, 3, 100] → 1.5 (trimmed mean 2.0); ByzFL's docstring golden, a tie."""
    x = torch.tensor([[0.0], [1.0], [2.0], [3.0], [100.0]])
    assert agg.meamed(x, 1).tolist() == [1.5]
    assert agg.trimmed_mean(x, 1).tolist() == [2.0]
    byzfl = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    assert agg.meamed(byzfl, 1).tolist() == [2.5, 3.5, 4.5]


def test_meamed_tie_goes_to_the_lower_row() -> None:
    """Median 2 of [1, 3, 2] (rows 0, 1, 2), f=1: 1 and 3 are equally far; row 0 (value 1)
    is kept, so the result is 1.5; with the rows swapped it is 2.5."""
    assert agg.meamed(torch.tensor([[1.0], [3.0], [2.0]]), 1).tolist() == [1.5]
    assert agg.meamed(torch.tensor([[3.0], [1.0], [2.0]]), 1).tolist() == [2.5]


def test_meamed_f0_is_the_mean_and_stays_in_the_columns_range() -> None:
    x = data(9)
    close(agg.meamed(x, 0), x.mean(dim=0))
    out = agg.meamed(x, 4)
    assert bool((x.min(dim=0).values <= out).all() and (out <= x.max(dim=0).values).all())


def test_meamed_near_the_float32_maximum() -> None:
    x = torch.tensor([[3e38], [-3e38], [1.0], [2.0], [3.0]])
    assert agg.meamed(x, 2).tolist() == [2.0]


def test_function_preconditions_and_non_finite() -> None:
    with pytest.raises(ValueError, match=re.escape("meamed: needs n ≥ 2f+1 = 7, got n=6, f=3")):
        agg.meamed(data(6), 3)
    with pytest.raises(ValueError, match="f must be ≥ 0"):
        agg.meamed(data(), -1)
    x = data()
    x[2, 2] = float("nan")
    with pytest.raises(ValueError, match=re.escape("meamed: updates contain NaN/Inf in rows [2]")):
        agg.meamed(x, 1)
