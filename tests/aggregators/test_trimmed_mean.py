"""Coordinate-wise trimmed mean (docs/conventions.md §C9): the shared rule checks, the naive oracle
on tie-heavy grids, the order-statistic bounds for every ``b``, ``b``/``beta`` and the function's
preconditions."""

from __future__ import annotations

import re

import pytest
import torch
from hypothesis import given, settings
from naive_rules import close, grids
from rule_tester import RuleTester, context, data, matrices

import fedpoison.aggregators as agg
from fedpoison.aggregators.trimmed_mean import TrimmedMean


class TestTrimmedMean(RuleTester):
    rule = TrimmedMean
    bound = "2b+1"


def trimmed_mean_naive(pts, b) -> list[float]:
    out = []
    for col in zip(*pts, strict=True):
        kept = sorted(col)[b : len(col) - b]
        out.append(sum(kept) / len(kept))
    return out


@settings(max_examples=40, deadline=None)
@given(x=grids)
def test_trimmed_mean_matches_oracle_with_ties(x: list[list[float]]) -> None:
    """Small integer grids: many ties, which coordinate-wise rules must not care about."""
    t = torch.tensor(x, dtype=torch.float64)
    for b in range((len(x) - 1) // 2 + 1):
        close(agg.trimmed_mean(t, b), trimmed_mean_naive(x, b))


@settings(max_examples=40, deadline=None)
@given(case=matrices(min_rows_for_f=lambda f: 2 * f + 1))
def test_trimmed_mean_stays_within_its_order_statistics(case) -> None:
    x, f = case
    s = torch.sort(x, dim=0).values
    n = x.shape[0]
    for b in range((n - 1) // 2 + 1):
        tm = TrimmedMean(b=b)(x, context(x, f)).aggregate
        assert bool((s[b] - 1e-12 <= tm).all() and (tm <= s[n - 1 - b] + 1e-12).all())


def test_trimmed_mean_b_defaults_to_f_and_beta_is_a_fraction() -> None:
    x = data(10)
    torch.testing.assert_close(TrimmedMean()(x, context(x, f=3)).aggregate, agg.trimmed_mean(x, 3))
    torch.testing.assert_close(
        TrimmedMean(b=1)(x, context(x, f=3)).aggregate, agg.trimmed_mean(x, 1)
    )
    torch.testing.assert_close(
        TrimmedMean(beta=0.29)(x, context(x)).aggregate, agg.trimmed_mean(x, 2)
    )
    with pytest.raises(ValueError, match="b or beta"):
        TrimmedMean(b=1, beta=0.1)


def test_function_preconditions_and_non_finite() -> None:
    with pytest.raises(ValueError, match=r"n=6"):
        agg.trimmed_mean(data(6), 3)
    x = data()
    x[2, 2] = float("nan")
    with pytest.raises(ValueError, match=re.escape("NaN/Inf in rows [2]")):
        agg.trimmed_mean(x, 1)
