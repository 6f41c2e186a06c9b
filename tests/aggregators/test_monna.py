"""MoNNA (REFERENCES D18): the shared rule checks with both pivots (the server's update, a trusted
client), the naive oracle for an index and a vector pivot, the goldens, the pivot always
selected, and the errors when no pivot is given."""

from __future__ import annotations

import math
import re
from typing import ClassVar

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, normal, rows, seeds
from rule_tester import RuleTester, context, data

import fedpoison.aggregators as agg
from fedpoison.aggregators.monna import MoNNA, monna_weights


class TestMoNNA(RuleTester):
    """Pivot: the server's update (the context's is the mean of the rows)."""

    rule = MoNNA
    bound = "2f+1"


class TestMoNNATrustedClient(RuleTester):
    """Pivot: client 3's row (never among the tester's Byzantine rows 0…f−1)."""

    rule = MoNNA
    params: ClassVar = {"pivot_client": 3}
    bound = "2f+1"
    test_missing_server_update_is_an_error = None  # no server update needed


def monna_naive(pts: list[list[float]], f: int, pivot: int | list[float]) -> list[float]:
    p = pts[pivot] if isinstance(pivot, int) else pivot

    def key(i: int) -> tuple[float, int]:
        dist = math.sqrt(sum((a - b) ** 2 for a, b in zip(pts[i], p, strict=True)))
        return (-1.0 if i == pivot else dist, i)

    kept = sorted(range(len(pts)), key=key)[: len(pts) - f]
    return [sum(pts[i][k] for i in kept) / len(kept) for k in range(len(p))]


@settings(max_examples=40, deadline=None)
@given(f=st.integers(0, 3), extra=st.integers(0, 6), d=st.integers(1, 6), seed=seeds)
def test_monna_matches_oracle(f: int, extra: int, d: int, seed: int) -> None:
    x = normal(2 * f + 1 + extra + 1, d, seed)
    pts, vector = x[1:], x[0]
    for pivot in range(len(pts)):
        close(agg.monna(pts, f, pivot), monna_naive(rows(pts), f, pivot))
    close(agg.monna(pts, f, vector), monna_naive(rows(pts), f, vector.tolist()))


def test_monna_goldens() -> None:
    """D18: around row 0 the inliers; around the outlier (row 3) the outlier stays in."""
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [10.0, 10.0]], dtype=torch.float64)
    close(agg.monna(x, 1, 0), [1 / 3, 1 / 3])
    close(agg.monna(x, 1, 3), [11 / 3, 11 / 3])
    byzfl = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
    assert agg.monna(byzfl, 1, 1).tolist() == [2.5, 3.5, 4.5]  # ByzFL's golden, idx=1


def test_the_pivot_row_is_always_selected() -> None:
    """Three copies of row 3 before it: ties would keep rows 0–2, but the pivot is kept."""
    x = torch.tensor([[1.0], [1.0], [1.0], [1.0], [5.0]])
    weights = MoNNA(pivot_client=3)(x, context(x, 1)).weights
    assert weights[3] > 0 and int((weights > 0).sum()) == 4


def test_monna_rows_outside_the_neighbourhood_can_move_away() -> None:
    x = data(9)
    out = monna_weights(x, 2, 4) == 0
    far = x.clone()
    far[out] = x[4] + 1e3 * (x[out] - x[4])
    close(agg.monna(far, 2, 4), agg.monna(x, 2, 4))


def test_monna_f0_is_the_mean() -> None:
    x = data(7)
    close(agg.monna(x, 0, 2), x.mean(dim=0))


def test_pivot_client_is_located_by_client_id() -> None:
    """Client 13 sits in row 1 of a round with ids (10, 13, 17, 20, 21)."""
    x = torch.tensor([[0.0], [1.0], [2.0], [50.0], [60.0]], dtype=torch.float64)
    ctx = context(x, 2, client_ids=(10, 13, 17, 20, 21))
    close(MoNNA(pivot_client=13)(x, ctx).aggregate, [1.0])
    close(MoNNA(pivot_client=21)(x, ctx).aggregate, [(60 + 50 + 2) / 3])


def test_missing_pivots_are_errors() -> None:
    x = data()
    with pytest.raises(ValueError, match=r"monna: needs ctx.server_update .*pivot_client"):
        MoNNA()(x, context(x, 2, server_update=None))
    with pytest.raises(ValueError, match="trusted pivot client 40 is not among this round"):
        MoNNA(pivot_client=40)(x, context(x, 2))
    with pytest.raises(TypeError):
        agg.monna(x, 2)  # type: ignore[call-arg]  # no default pivot
    with pytest.raises(ValueError, match=re.escape("pivot row must be in [0, n), got pivot=11")):
        agg.monna(x, 2, 11)
    with pytest.raises(ValueError, match="pivot must be a finite vector of shape"):
        agg.monna(x, 2, torch.zeros(3, dtype=x.dtype))


def test_root_set_only_for_the_server_pivot() -> None:
    assert MoNNA().root is not None and MoNNA(pivot_client=0).root is None


def test_function_preconditions() -> None:
    with pytest.raises(ValueError, match=re.escape("monna: needs n ≥ 2f+1 = 7, got n=6, f=3")):
        agg.monna(data(6), 3, 0)
