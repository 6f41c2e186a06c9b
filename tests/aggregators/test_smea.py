"""SMEA (REFERENCES D20): the shared rule checks, the NumPy oracle (``cov(bias=True)`` and
``eigvalsh`` per subset, strict ``<``: ties → the lexicographically first subset), the hand-computed
eigenvalues and the budget error."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, normal, seeds
from rule_tester import RuleTester, context, data

import fedpoison.aggregators as agg
from fedpoison.aggregators._linalg import gram
from fedpoison.aggregators._subsets import kept_mask
from fedpoison.aggregators.smea import SMEA, subset_eigenvalues


class TestSMEA(RuleTester):
    rule = SMEA
    bound = "2f+1"


def top_eigenvalue(pts: np.ndarray) -> float:
    if len(pts) < 2:
        return 0.0
    return float(np.linalg.eigvalsh(np.atleast_2d(np.cov(pts.T, bias=True)))[-1])


def smea_naive(x: np.ndarray, f: int) -> np.ndarray:
    """The first subset (``itertools.combinations`` order) whose λ_max is the smallest, λs
    equal up to rounding (1e-9 relative) counting as equal."""
    subsets = list(itertools.combinations(range(len(x)), len(x) - f))
    lams = [top_eigenvalue(x[list(s)]) for s in subsets]
    low = min(lams)
    best = next(s for s, lam in zip(subsets, lams, strict=True) if lam <= low + 1e-9 * max(1, low))
    return x[list(best)].mean(axis=0)


@settings(max_examples=40, deadline=None)
@given(f=st.integers(0, 3), extra=st.integers(0, 3), d=st.integers(1, 5), seed=seeds)
def test_smea_matches_oracle(f: int, extra: int, d: int, seed: int) -> None:
    x = normal(2 * f + 1 + extra, d, seed)
    close(agg.smea(x, f), smea_naive(x.numpy(), f))


def test_smea_hand_computed_eigenvalues() -> None:
    """D20: λ_max = 1/3 for {0,1,2}, 42.357 for {0,1,3} and {0,2,3}, 40.111 for {1,2,3}."""
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [10.0, 10.0]], dtype=torch.float64)
    excluded = torch.tensor([[3], [2], [1], [0]])
    g, _ = gram(x, centre=True)
    values, _ = subset_eigenvalues(g, kept_mask(excluded, 4))
    close((values / 3).tolist(), [1 / 3, 42.357, 42.357, 40.111], tol=1e-3)
    close(agg.smea(x, 1), [1 / 3, 1 / 3])
    assert SMEA()(x, context(x, 1)).weights.tolist() == [1 / 3, 1 / 3, 1 / 3, 0.0]


def test_smea_byzfl_golden_tie_goes_to_the_first_subset() -> None:
    """{0,1} and {1,2} have the same λ; ByzFL's random power step picks either, here {0,1}."""
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    assert agg.smea(x, 1).tolist() == [2.5, 3.5, 4.5]


@settings(max_examples=20, deadline=None)
@given(
    pts=st.integers(3, 7).flatmap(
        lambda n: st.lists(
            st.lists(st.integers(-2, 2).map(float), min_size=2, max_size=2),
            min_size=n,
            max_size=n,
        )
    ),
)
def test_smea_ties_on_grids(pts) -> None:
    x = np.array(pts)
    f = (len(pts) - 1) // 2
    close(agg.smea(torch.tensor(x), f), smea_naive(x, f), tol=1e-9)


def test_budget_and_preconditions() -> None:
    with pytest.raises(ValueError, match=re.escape("smea: enumerates C(n, f) = C(30, 10)")):
        SMEA().check(30, 10)
    with pytest.raises(ValueError, match=re.escape("smea: needs n ≥ 2f+1 = 7, got n=6, f=3")):
        agg.smea(data(6), 3)
    with pytest.raises(ValueError, match=re.escape("C(10, 2) = 45 subsets")):
        agg.smea(data(10), 2, max_subsets=44)
