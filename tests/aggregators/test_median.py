"""Coordinate-wise median (docs/conventions.md §C8): the shared rule checks, the mean of the two
middle values (not the lower median), the naive oracle on tie-heavy grids and the order-statistic
bounds."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from naive_rules import close, grids, median_naive, rows
from rule_tester import RuleTester, context, data, matrices

import fedpoison.aggregators as agg
from fedpoison.aggregators.median import Median


class TestMedian(RuleTester):
    rule = Median
    bound = "2f+1"


def test_median_is_not_the_lower_median() -> None:
    x = torch.tensor([[1.0], [2.0], [3.0], [10.0]])
    assert agg.median(x).tolist() == [2.5] == median_naive(rows(x))
    assert median_naive(rows(x), lower=True) == [2.0] == torch.median(x, dim=0).values.tolist()


@settings(max_examples=40, deadline=None)
@given(x=grids)
def test_median_matches_oracle_with_ties(x: list[list[float]]) -> None:
    """Small integer grids: many ties, which coordinate-wise rules must not care about."""
    t = torch.tensor(x, dtype=torch.float64)
    close(agg.median(t), median_naive(x))
    close(agg.median(t), np.median(np.array(x), axis=0))


@settings(max_examples=40, deadline=None)
@given(case=matrices(min_rows_for_f=lambda f: 2 * f + 1))
def test_median_stays_between_the_middle_order_statistics(case) -> None:
    x, f = case
    s = torch.sort(x, dim=0).values
    n = x.shape[0]
    med = Median()(x, context(x, f)).aggregate
    assert bool((s[(n - 1) // 2] <= med).all() and (med <= s[n // 2]).all())


def test_function_refuses_bad_shapes_and_non_finite() -> None:
    with pytest.raises(ValueError, match="2-D floating"):
        agg.median(torch.ones(5))
    x = data()
    x[2, 2] = float("nan")
    with pytest.raises(ValueError, match=re.escape("NaN/Inf in rows [2]")):
        agg.median(x)
