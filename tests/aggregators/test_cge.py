"""CGE (REFERENCES D22): the shared rule checks for both reductions, the naive oracle, the golden,
the norm bounds of D22 and the function's preconditions."""

from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, normal, rows, seeds
from rule_tester import RuleTester, context, data

import fedpoison.aggregators as agg
from fedpoison.aggregators.cge import CGE


class TestCGE(RuleTester):
    """The paper's sum: not unanimous (n−f times the row) and outside the honest box."""

    rule = CGE
    bound = "f+1"


class TestCGEMean(RuleTester):
    """The peers' mean: unanimous as well."""

    rule = CGE
    params = {"reduce": "mean"}
    bound = "f+1"

    def test_unanimity_of_the_mean(self) -> None:
        x = data(7)[:1].expand(7, 6)
        close(CGE(reduce="mean")(x, context(x, 2)).aggregate, x[0])


def cge_naive(pts: list[list[float]], f: int, reduce: str = "sum") -> list[float]:
    by_norm = sorted(range(len(pts)), key=lambda i: (math.sqrt(sum(v * v for v in pts[i])), i))
    kept = [pts[i] for i in by_norm[: len(pts) - f]]
    total = [sum(col) for col in zip(*kept, strict=True)]
    return total if reduce == "sum" else [t / len(kept) for t in total]


@settings(max_examples=40, deadline=None)
@given(f=st.integers(0, 4), extra=st.integers(1, 6), d=st.integers(1, 6), seed=seeds)
def test_cge_matches_oracle(f: int, extra: int, d: int, seed: int) -> None:
    x = normal(f + extra, d, seed)
    for reduce in ("sum", "mean"):
        close(agg.cge(x, f, reduce=reduce), cge_naive(rows(x), f, reduce))


def test_cge_golden() -> None:
    """D22: (6, 8) has norm 10 and is dropped: sum (4, 6), mean (4/3, 2)."""
    g = torch.tensor([[3.0, 4.0], [1.0, 0.0], [0.0, 2.0], [6.0, 8.0]], dtype=torch.float64)
    close(agg.cge(g, 1), [4.0, 6.0])
    close(agg.cge(g, 1, reduce="mean"), [4 / 3, 2.0])
    assert CGE()(g, context(g, 1)).weights.tolist() == [1.0, 1.0, 1.0, 0.0]
    assert CGE(reduce="mean")(g, context(g, 1)).weights.tolist() == [1 / 3, 1 / 3, 1 / 3, 0.0]


def test_cge_norm_ties_keep_the_lower_rows() -> None:
    g = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    assert agg.cge(g, 1).tolist() == [1.0, 1.0]


@settings(max_examples=30, deadline=None)
@given(f=st.integers(0, 3), extra=st.integers(1, 6), d=st.integers(1, 5), seed=seeds)
def test_cge_norm_bounds(f: int, extra: int, d: int, seed: int) -> None:
    """‖sum‖ ≤ (n−f)·max kept norm and ‖mean‖ ≤ max kept norm (D22)."""
    x = normal(f + extra, d, seed)
    norms = sorted(x.norm(dim=1).tolist())[: x.shape[0] - f]
    assert float(agg.cge(x, f).norm()) <= len(norms) * norms[-1] + 1e-9
    assert float(agg.cge(x, f, reduce="mean").norm()) <= norms[-1] + 1e-9


def test_function_preconditions_and_errors() -> None:
    with pytest.raises(ValueError, match=re.escape("cge: needs n ≥ f+1 = 4, got n=3, f=3")):
        agg.cge(data(3), 3)
    with pytest.raises(ValueError, match="reduce must be one of"):
        agg.cge(data(), 1, reduce="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cge: reduce must be one of"):
        CGE(reduce="average")  # type: ignore[arg-type]
