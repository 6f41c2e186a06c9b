"""ARC, the adaptive-robust-clipping pre-aggregator (REFERENCES D23): a loop transcription of
ByzFL's code (with exact integer k) on Hypothesis inputs, the goldens, the k table (including the
(242, 33) case the float formula gets wrong), the invariants of D23, the mixing identity, the
registry name and a defense built with it."""

from __future__ import annotations

import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, normal, rows, seeds
from rule_tester import context, data

from fedpoison.aggregators import PRE_AGGREGATORS, build_defense, trimmed_mean
from fedpoison.aggregators.arc import ARC, arc, arc_clipped


def arc_naive(pts: list[list[float]], f: int) -> list[list[float]]:
    n = len(pts)
    k = (2 * f * (n - f)) // n
    norm = [math.sqrt(sum(v * v for v in p)) for p in pts]
    order = sorted(range(n), key=lambda i: norm[i])  # ascending, stable (ByzFL)
    out = [list(p) for p in pts]
    if k == 0:
        return out
    c = norm[order[n - k - 1]]
    for i in order[n - k :]:
        out[i] = [v * c / norm[i] for v in pts[i]]
    return out


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), f=st.integers(0, 12), d=st.integers(1, 5), seed=seeds)
def test_arc_matches_oracle(n: int, f: int, d: int, seed: int) -> None:
    f = min(f, n)
    x = normal(n, d, seed)
    before = x.clone()
    close(arc(x, f), arc_naive(rows(x), f))
    assert torch.equal(x, before)


def test_arc_goldens() -> None:
    byzfl = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], dtype=torch.float64)
    s = math.sqrt(77) / math.sqrt(194)
    close(arc(byzfl, 1), [[1, 2, 3], [4, 5, 6], [7 * s, 8 * s, 9 * s]])
    close(arc(byzfl, 1)[2], [4.41004, 5.04005, 5.67005], tol=1e-5)
    r = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0], [0.0, 4.0], [5.0, 0.0]])
    assert arc(r, 1).tolist() == [[1, 0], [0, 2], [3, 0], [0, 4], [4, 0]]
    assert arc(r, 2).tolist() == [[1, 0], [0, 2], [3, 0], [0, 3], [3, 0]]


def test_k_table_uses_integer_arithmetic() -> None:
    cases = {(10, 1): 1, (10, 2): 3, (10, 3): 4, (10, 4): 4, (20, 4): 6, (100, 20): 32}
    cases[242, 33] = 57
    assert {nf: arc_clipped(*nf) for nf in cases} == cases
    assert int((2 * 33 / 242) * (242 - 33)) == 56  # ByzFL's and byzpy's float formula


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 12), f=st.integers(1, 5), d=st.integers(1, 5), seed=seeds)
def test_arc_invariants(n: int, f: int, d: int, seed: int) -> None:
    """Scale equivariance, no row above C, rows at or below C unchanged (D23)."""
    f = min(f, n)
    x = normal(n, d, seed)
    out = arc(x, f)
    close(arc(3.5 * x, f), 3.5 * out)
    k = arc_clipped(n, f)
    if k == 0:
        assert torch.equal(out, x)
        return
    c = float(torch.sort(x.norm(dim=1), descending=True).values[k])
    assert bool((out.norm(dim=1) <= c * (1 + 1e-12)).all())
    small = x.norm(dim=1) <= c
    assert torch.equal(out[small], x[small])


def test_arc_as_a_pre_aggregator() -> None:
    assert PRE_AGGREGATORS.get("arc") is ARC
    x = data(11)
    mixed, mixing = ARC()(x, context(x, 2))
    close(mixed, mixing @ x)
    close(mixed, arc(x, 2))
    assert torch.equal(mixing, torch.diag(mixing.diagonal()))
    defense, _ = build_defense({"_target_": "fedpoison.aggregators.TrimmedMean", "pre": ["arc"]})
    assert defense.name == "arc+trimmed_mean"
    close(defense(x, context(x, 2)).aggregate, trimmed_mean(arc(x, 2), 2))


def test_arc_errors() -> None:
    x = data(5)
    with pytest.raises(ValueError, match=re.escape("arc: needs f ≤ n = 5, got n=5, f=6")):
        ARC()(x, context(x, 6))
    x[1, 1] = float("nan")
    with pytest.raises(ValueError, match=re.escape("arc: updates contain NaN/Inf in rows [1]")):
        arc(x, 1)
