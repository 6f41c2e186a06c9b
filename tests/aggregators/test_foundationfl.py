"""FoundationFL (Fang et al. 2025, Eqs. 2–7 and Algorithm 1; docs/conventions.md §C30): the
shared rule checks for both base rules, a naive transcription, the paper's default m = n // 2,
the extremes example, ties, m = 0 as the base rule, the attacker rows it copies, and clear
errors."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, normal, seeds
from rule_tester import RuleTester, context

from fedpoison.aggregators import FoundationFL, foundationfl, median, trimmed_mean
from fedpoison.aggregators.foundationfl import foundational_scores
from fedpoison.attacks.fang_trim import fang_trim_full


class TestFoundationFL(RuleTester):
    rule = FoundationFL
    bound = "2f+1"


class TestFoundationFLMedian(RuleTester):
    rule = FoundationFL
    params = {"base": "median", "m": 3}
    bound = "2f+1"


def foundationfl_naive(x: list[list[float]], f: int, m: int, base: str) -> list[float]:
    cols = list(zip(*x, strict=True))
    hi, lo = [max(c) for c in cols], [min(c) for c in cols]

    def dist(a, b):
        return math.sqrt(sum((p - q) ** 2 for p, q in zip(a, b, strict=True)))

    scores = [min(dist(row, hi), dist(row, lo)) for row in x]
    star = x[scores.index(max(scores))]
    rows = x + [star] * m
    out = []
    for col in zip(*rows, strict=True):
        s = sorted(col)
        if base == "median":
            k = len(s)
            out.append(s[k // 2] if k % 2 else (s[k // 2 - 1] + s[k // 2]) / 2)
        else:
            kept = s[f : len(s) - f]
            out.append(sum(kept) / len(kept))
    return out


@settings(max_examples=40, deadline=None)
@given(
    f=st.integers(0, 3),
    extra=st.integers(0, 6),
    d=st.integers(1, 6),
    m=st.integers(0, 4),
    seed=seeds,
    base=st.sampled_from(["trimmed_mean", "median"]),
)
def test_matches_the_naive_transcription(f, extra, d, m, seed, base) -> None:
    x = normal(2 * f + 1 + extra, d, seed)
    close(foundationfl(x, f, m=m, base=base), foundationfl_naive(x.tolist(), f, m, base))
    got = FoundationFL(m=m, base=base)(x, context(x, f))
    close(got.aggregate, foundationfl_naive(x.tolist(), f, m, base))
    close(got.weights, [1.0 / x.shape[0]] * x.shape[0])


@settings(max_examples=20, deadline=None)
@given(f=st.integers(0, 3), extra=st.integers(0, 6), seed=seeds)
def test_the_default_m_is_half_the_round(f, extra, seed) -> None:
    """§VI-A6: n/2 synthetic updates per round (30 received → 15), so m = n // 2 of the rows."""
    x = normal(2 * f + 1 + extra, 3, seed)
    for base in ("trimmed_mean", "median"):
        got = FoundationFL(base=base)(x, context(x, f)).aggregate
        close(got, foundationfl_naive(x.tolist(), f, x.shape[0] // 2, base))


def test_scores_of_the_extremes_example() -> None:
    """g_max = (100, 3), g_min = (1, −100): s = (99.02, 98.01, 97.00, 99.00), i* = row 0; the
    single extreme attacker (row 3) comes second."""
    x = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [100.0, -100.0]], dtype=torch.float64)
    scores = foundational_scores(x)
    close(scores, [math.hypot(99, 2), math.hypot(98, 1), 97.0, 99.0])
    assert int(scores.argmax()) == 0


def test_ties_go_to_the_first_index() -> None:
    """The paper states no tie rule: (0, 2) and (2, 0) both score 2, the first is copied."""
    x = torch.tensor([[0.0, 0.0], [2.0, 2.0], [0.0, 2.0], [2.0, 0.0]], dtype=torch.float64)
    close(foundational_scores(x), [0.0, 0.0, 2.0, 2.0])
    close(foundationfl(x, 0, m=1), [0.8, 1.2])  # the mean of the four rows and (0, 2)


def test_m_zero_is_the_base_rule() -> None:
    x = normal(9, 4, 3)
    torch.testing.assert_close(foundationfl(x, 2, m=0), trimmed_mean(x, 2))
    torch.testing.assert_close(foundationfl(x, 2, m=0, base="median"), median(x))


def test_copies_pull_the_aggregate_towards_the_chosen_row() -> None:
    x = normal(11, 5, 7)
    star = x[int(foundational_scores(x).argmax())]
    for base in ("trimmed_mean", "median"):
        gaps = [float((foundationfl(x, 2, m=m, base=base) - star).norm()) for m in (0, 4, 40)]
        assert gaps[0] > gaps[1] > gaps[2]


def test_an_attacker_between_two_extreme_attackers_is_copied() -> None:
    """Why bounded_influence is not declared: the attacker at the midpoint of the range scores
    highest, and its m copies survive the trim of f per side."""
    honest = normal(9, 3, 0)
    x = torch.cat([torch.full((1, 3), 1e12), torch.full((1, 3), 5e11), honest]).double()
    assert int(foundational_scores(x).argmax()) == 1
    assert float(foundationfl(x, 2, m=2).abs().min()) > 1e10
    assert float(trimmed_mean(x, 2).abs().max()) < 10  # the base rule alone is not moved


def test_ipm_rows_are_the_ones_copied_when_the_mean_has_mixed_signs() -> None:
    """IPM's rows −τ·mean are the minimum where the mean is positive and the maximum where it
    is negative, hence far from both extreme vectors: they score highest, their copies survive
    the trim and the deviation grows with τ, while the trimmed mean alone stays put. (Seen end
    to end: optimal_ipm against foundationfl on digits makes the model diverge in round 5, with
    m = 2 and with the paper's m = n // 2; docs/conventions.md §C30.)"""
    sign = torch.where(torch.arange(50) % 2 == 0, 1.0, -1.0).double()
    honest = sign + 0.5 * normal(16, 50, 0)
    center = honest.mean(dim=0)
    for tau in (10.0, 1000.0):  # m = 2: 2 copies among the 14 kept values, ≈ τ·‖mean‖/7 ≈ τ
        x = torch.cat([-tau * center.expand(4, 50), honest])
        assert int(foundational_scores(x).argmax()) < 4  # an attacker row
        for m in (2, 10):  # 10 = n // 2, the paper's default
            assert float((foundationfl(x, 4, m=m) - center).norm()) > 0.5 * tau
        assert float((trimmed_mean(x, 4) - center).norm()) < 2.0


def test_a_trim_attack_row_is_the_one_copied() -> None:
    """Eq. (4) as written: Fang's trim attack puts every attacker value beyond the maximum on
    some coordinates and beyond the minimum on the others, so each attacker row is far from
    both extreme vectors and one of them is copied, in every draw here, although the paper
    reports FoundationFL unaffected by this attack (Table I; docs/conventions.md §C30)."""
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        benign = torch.randn(50, generator=g) + torch.randn(16, 50, generator=g)
        x = torch.cat([fang_trim_full(benign, benign.mean(dim=0).sign(), 4, g), benign])
        assert int(foundational_scores(x).argmax()) < 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"m": -1}, r"m must be an integer ≥ 0 or null \(n // 2\), got -1"),
        ({"m": 1.5}, r"m must be an integer ≥ 0 or null \(n // 2\), got 1.5"),
        ({"base": "mean"}, "base must be trimmed_mean|median"),
    ],
)
def test_constructor_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"foundationfl: {message}"):
        FoundationFL(**kwargs)


def test_function_precondition_names_n_f_and_bound() -> None:
    with pytest.raises(ValueError, match=r"foundationfl: needs n ≥ 2f\+1 = 7, got n=6, f=3"):
        foundationfl(normal(6, 2, 0), 3, m=2)
