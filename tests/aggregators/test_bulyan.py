"""Bulyan (docs/conventions.md §C10): the shared rule checks, the sizes at n=100, f=20, the naive
oracle, its tie conventions and the function's precondition."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import bulyan_naive, close, normal, rows, seeds
from rule_tester import RuleTester, data

import fedpoison.aggregators as agg
from fedpoison.aggregators.base import RoundContext
from fedpoison.aggregators.bulyan import Bulyan


class TestBulyan(RuleTester):
    """Permutations are drawn with f ∈ {0, 3}: for f ∈ {1, 2} Bulyan's last Krum steps use one
    neighbour, where ties (→ lowest index) are structural (see test_bulyan_one_neighbour_ties).
    Far rows: two colluding rows are each other's nearest neighbour in those last steps and
    can be selected; the coordinate-wise stage still keeps them out of the aggregate."""

    rule = Bulyan
    bound = "4f+3"
    permutation_fs = st.sampled_from([0, 3])
    far_rows_get_zero_weight = False


def test_bulyan_sizes_n100_f20() -> None:
    """θ = 60 rows are selected, so the weights are 1/60 on 60 clients."""
    x = normal(100, 8, 0)
    result = Bulyan()(x, RoundContext(f=20, client_ids=tuple(range(100))))
    assert int((result.weights > 0).sum()) == 60
    close(result.weights[result.weights > 0], [1 / 60] * 60)
    close(result.aggregate, bulyan_naive(rows(x), 20))


@settings(max_examples=30, deadline=None)
@given(f=st.integers(0, 2), extra=st.integers(0, 5), d=st.integers(1, 5), seed=seeds)
def test_bulyan_matches_oracle(f: int, extra: int, d: int, seed: int) -> None:
    n = 4 * f + 3 + extra
    x = normal(n, d, seed)
    close(agg.bulyan(x, f), bulyan_naive(rows(x), f))


def test_bulyan_closest_to_median_ties_keep_smaller_values() -> None:
    """f=1, n=7, θ=5, β=1 ... in one coordinate {0, 1, 2, 3, 4} around median 2 with β=1 is
    unambiguous; with values {0, 1, 3, 4} the tie between 1 and 3 keeps 1."""
    pts = [[0.0], [1.0], [3.0], [4.0], [100.0], [-100.0], [2.0]]
    close(agg.bulyan(torch.tensor(pts, dtype=torch.float64), 1), bulyan_naive(pts, 1))


def test_bulyan_one_neighbour_ties() -> None:
    """n=7, f=1: the last selection step has R = {4, 5, 6} and one neighbour, so the mutual
    nearest neighbours 4 (at 50) and 5 (at 60) tie and the lower index is taken (D4's
    documented edge case)."""
    pts = [[0.0], [1.0], [2.0], [3.0], [50.0], [60.0], [4.0]]
    x = torch.tensor(pts, dtype=torch.float64)
    chosen = Bulyan()(x, RoundContext(f=1, client_ids=tuple(range(7))))
    close(agg.bulyan(x, 1), bulyan_naive(pts, 1))
    assert torch.nonzero(chosen.weights).flatten().tolist() == [0, 1, 2, 3, 4]


def test_bulyan_next_to_a_huge_row() -> None:
    """See ``test_krum_resolves_inliers_next_to_a_huge_row``."""
    x = normal(9, 5, 0)
    x[0] = 1e30
    close(agg.bulyan(x, 1), bulyan_naive(rows(x), 1))


def test_function_precondition() -> None:
    with pytest.raises(ValueError, match=r"n=6"):
        agg.bulyan(data(6), 2)
