"""CAF (REFERENCES D21): the shared rule checks (exact eigenpair, and ByzFL's power-step variant,
which needs the generator), a NumPy loop oracle on the d×d covariance, D21's hand-computed
iterations, the f = 0 and identical-rows cases ByzFL gets wrong, and the preconditions."""

from __future__ import annotations

import re
from typing import ClassVar

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, normal, seeds
from rule_tester import RuleTester, context, data

import fedpoison.aggregators as agg
from fedpoison.aggregators.caf import CAF, caf_weights


class TestCAF(RuleTester):
    rule = CAF
    bound = "2f+1"


class TestCAFPowerStep(RuleTester):
    """ByzFL's variant: random starts, so no exact symmetry checks beyond unanimity."""

    rule = CAF
    params: ClassVar = {"power_iters": 1}
    bound = "2f+1"


for _check in (
    "test_permutation_invariance",
    "test_translation_equivariance",
    "test_positive_scaling",
    "test_far_rows_are_rejected",
    "test_output_does_not_depend_on_the_generator",
):
    setattr(TestCAFPowerStep, _check, None)  # the random start changes the filter


def caf_naive(x: np.ndarray, f: int) -> tuple[np.ndarray, list[float]]:
    """D21 on the d×d covariance with ``numpy.linalg.eigh``; max τ over weighted rows.
    Returns the aggregate and the λ of each iteration."""
    n = len(x)
    c = np.ones(n)
    best, best_lam, lams = x.mean(axis=0), np.inf, []
    while c.sum() > n - 2 * f:
        mu = (c[:, None] * x).sum(axis=0) / c.sum()
        y = x - mu
        cov = sum(c[i] * np.outer(y[i], y[i]) for i in range(n)) / c.sum()
        values, vectors = np.linalg.eigh(cov)
        lam, v = values[-1], vectors[:, -1]
        lams.append(float(lam))
        if lam < best_lam:
            best, best_lam = mu, lam
        tau = (y @ v) ** 2
        top = max(tau[i] for i in range(n) if c[i] > 0)
        if lam <= 0 or top <= 0:
            break
        c = c * np.maximum(1 - tau / top, 0.0)
    return best, lams


@settings(max_examples=40, deadline=None)
@given(f=st.integers(0, 3), extra=st.integers(0, 5), d=st.integers(1, 5), seed=seeds)
def test_caf_matches_oracle(f: int, extra: int, d: int, seed: int) -> None:
    x = normal(2 * f + 1 + extra, d, seed)
    close(agg.caf(x, f), caf_naive(x.numpy(), f)[0], tol=1e-7)


def test_caf_hand_computed_iterations() -> None:
    """D21: λ = 35.125, then 0.33929; c = (0.8561, 0, 0, 0); CAF = (0.33929, 0.33929)."""
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [10.0, 10.0]], dtype=torch.float64)
    out, lams = caf_naive(x.numpy(), 1)
    close(lams, [35.125, 0.33929], tol=1e-4)
    close(agg.caf(x, 1), [0.33929, 0.33929], tol=1e-4)
    close(out, agg.caf(x, 1))
    weights = CAF()(x, context(x, 1)).weights
    assert weights[3] == 0 and bool((weights[:3] > 0).all())
    close(weights @ x, agg.caf(x, 1))


def test_caf_byzfl_golden() -> None:
    """Rank-1 covariance: ByzFL's single power step is exact, so both give (4, 5, 6)."""
    x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]], dtype=torch.float64)
    close(agg.caf(x, 1), [4.0, 5.0, 6.0])
    g = torch.Generator().manual_seed(0)
    close(caf_weights(x, 1, power_iters=1, generator=g) @ x, [4.0, 5.0, 6.0])


def test_caf_f0_is_the_mean_and_identical_rows_stop() -> None:
    """ByzFL returns None for f = 0 and divides 0/0 on identical rows (D21)."""
    x = data(7)
    close(agg.caf(x, 0), x.mean(dim=0))
    same = x[:1].expand(7, 6).clone()
    close(agg.caf(same, 3), same[0])


def test_power_steps_converge_to_the_exact_filter() -> None:
    """Many power steps from any start give the exact eigenpair, hence the exact result."""
    x = normal(9, 4, 3)
    g = torch.Generator().manual_seed(1)
    close(caf_weights(x, 2, power_iters=200, generator=g) @ x, agg.caf(x, 2), tol=1e-6)


def test_preconditions_and_errors() -> None:
    with pytest.raises(ValueError, match=re.escape("caf: needs n ≥ 2f+1 = 7, got n=6, f=3")):
        agg.caf(data(6), 3)
    with pytest.raises(ValueError, match="power_iters must be ≥ 1"):
        CAF(power_iters=0)
    x = data()
    with pytest.raises(ValueError, match="caf: needs ctx.generator"):
        CAF(power_iters=1)(x, context(x, 2, generator=None))
