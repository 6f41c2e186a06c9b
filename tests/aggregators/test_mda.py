"""MDA (REFERENCES D19): the shared rule checks, the brute-force oracle over
``itertools.combinations`` (strict ``<``, so ties → the lexicographically first subset), the
goldens, the subset enumeration and the budget error raised before round 1."""

from __future__ import annotations

import itertools
import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, normal, rows, seeds, sqdist
from rule_tester import RuleTester, context, data

import fedpoison.aggregators as agg
from fedpoison.aggregators._subsets import complements, unrank
from fedpoison.aggregators.mda import MDA


class TestMDA(RuleTester):
    rule = MDA
    bound = "2f+1"


def mda_naive(pts: list[list[float]], f: int) -> list[float]:
    best, best_diam = None, math.inf
    for subset in itertools.combinations(range(len(pts)), len(pts) - f):
        diam = max(
            (sqdist(pts[i], pts[j]) for i, j in itertools.combinations(subset, 2)), default=0
        )
        if diam < best_diam:
            best, best_diam = subset, diam
    assert best is not None
    return [sum(pts[i][k] for i in best) / len(best) for k in range(len(pts[0]))]


@settings(max_examples=40, deadline=None)
@given(f=st.integers(0, 4), extra=st.integers(0, 3), d=st.integers(1, 5), seed=seeds)
def test_mda_matches_oracle(f: int, extra: int, d: int, seed: int) -> None:
    x = normal(2 * f + 1 + extra, d, seed)
    close(agg.mda(x, f), mda_naive(rows(x), f))


@settings(max_examples=40, deadline=None)
@given(
    pts=st.integers(3, 8).flatmap(
        lambda n: st.lists(
            st.lists(st.integers(-2, 2).map(float), min_size=2, max_size=2),
            min_size=n,
            max_size=n,
        )
    ),
    f=st.integers(1, 3),
)
def test_mda_ties_go_to_the_lexicographically_first_subset(pts, f: int) -> None:
    f = min(f, (len(pts) - 1) // 2)
    close(agg.mda(torch.tensor(pts, dtype=torch.float64), f), mda_naive(pts, f))


def test_mda_goldens() -> None:
    """D19: the outlier is dropped (diameter √2); ByzFL's golden is a tie {0,1} / {1,2}."""
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [10.0, 10.0]], dtype=torch.float64)
    close(agg.mda(x, 1), [1 / 3, 1 / 3])
    assert MDA()(x, context(x, 1)).weights.tolist() == [1 / 3, 1 / 3, 1 / 3, 0.0]
    byzfl = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    assert agg.mda(byzfl, 1).tolist() == [2.5, 3.5, 4.5]


@pytest.mark.parametrize(("n", "f"), [(5, 0), (6, 1), (9, 3), (12, 5), (40, 3)])
def test_complements_enumerate_in_lexicographic_order(n: int, f: int) -> None:
    got = [tuple(r) for block in complements(n, f, torch.device("cpu")) for r in block.tolist()]
    want = list(itertools.combinations(range(n), f))
    assert got == want
    assert [tuple(unrank(i, n, f)) for i in range(0, len(want), max(1, len(want) // 50))] == [
        want[i] for i in range(0, len(want), max(1, len(want) // 50))
    ]


def test_budget_is_refused_before_round_1_with_a_workable_size() -> None:
    """C(30, 10) ≈ 3·10⁷ > 10⁶: f ≤ 6 works for n = 30 (C(30, 6) = 593,775) and n ≤ 22 for
    f = 10 (C(22, 10) = 646,646; C(23, 10) = 1,144,066)."""
    message = (
        "mda: enumerates C(n, f) = C(30, 10) = 30,045,015 subsets, more than "
        "max_subsets = 1,000,000; got n=30, f=10: use f ≤ 6 for n=30, or n ≤ 22 for f=10, "
        "or raise max_subsets"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        MDA().check(30, 10)
    with pytest.raises(ValueError, match=re.escape("C(100, 20) = 535,983,370,403,809,682,970")):
        MDA().check(100, 20)
    with pytest.raises(ValueError, match=re.escape("use f ≤ 1 for n=12, or raise")):
        MDA(max_subsets=20).check(12, 5)
    MDA(max_subsets=45).check(10, 2)
    with pytest.raises(ValueError, match=re.escape("C(10, 2) = 45 subsets")):
        agg.mda(data(10), 2, max_subsets=44)
    with pytest.raises(ValueError, match="max_subsets must be ≥ 1"):
        MDA(max_subsets=0)


def test_function_preconditions() -> None:
    with pytest.raises(ValueError, match=re.escape("mda: needs n ≥ 2f+1 = 7, got n=6, f=3")):
        agg.mda(data(6), 3)
    x = data()
    x[2, 2] = float("inf")
    with pytest.raises(ValueError, match=re.escape("mda: updates contain NaN/Inf in rows [2]")):
        agg.mda(x, 1)
