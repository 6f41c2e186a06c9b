"""ByzFL's line search for τ (Optimal-ALIE/IPM): a naive transcription on Hypothesis-drawn
objectives, the evaluation count, the one-sided range, and the parameter checks."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.attacks.line_search import check_search, line_search


def byzfl_search(objective, evals, start, delta, ratio) -> float:
    """ByzFL's ``_expansion_phase`` then ``_contraction_phase``, transcribed."""
    best_x, best_y = start, objective(start)
    remaining = evals - 1
    while remaining > 0:
        prop_x = best_x + delta
        prop_y = objective(prop_x)
        remaining -= 1
        if prop_y > best_y:
            best_x, best_y = prop_x, prop_y
            delta *= 2
        else:
            delta *= ratio
            break
    while remaining > 0:
        prop_x = best_x + delta
        prop_y = objective(prop_x)
        remaining -= 1
        if prop_y > best_y:
            best_x, best_y = prop_x, prop_y
        delta *= ratio
    return best_x


objectives = st.tuples(st.floats(-50, 200), st.floats(0.01, 5), st.floats(-3, 3)).map(
    lambda p: lambda tau: -p[1] * (tau - p[0]) ** 2 + p[2] * abs(tau % 7.0 - 3.0)
)


@settings(max_examples=60, deadline=None)
@given(
    objective=objectives,
    evals=st.integers(1, 30),
    start=st.floats(-5, 5),
    delta=st.floats(0.1, 20),
    ratio=st.floats(0.51, 0.99),
)
def test_matches_byzfl_and_calls_the_objective_evals_times(
    objective, evals: int, start: float, delta: float, ratio: float
) -> None:
    calls: list[float] = []

    def counted(tau: float) -> float:
        calls.append(tau)
        return objective(tau)

    got = line_search(counted, evals, start, delta, ratio)
    assert got == byzfl_search(objective, evals, start, delta, ratio)
    assert len(calls) == evals and calls[0] == start
    assert objective(got) >= objective(start)
    assert start <= got <= start + delta * (2 ** (evals - 1) - 1) * (1 + 1e-12)  # one-sided


def test_increasing_objective_reaches_the_end_of_the_range() -> None:
    assert line_search(lambda tau: tau) == 10.0 * (2**19 - 1) == 5_242_870.0


def test_flat_objective_keeps_the_start() -> None:
    assert line_search(lambda tau: 1.0, start=2.5) == 2.5


@pytest.mark.parametrize(
    ("evals", "delta", "ratio", "message"),
    [
        (0, 10.0, 0.8, "evals must be an integer ≥ 1"),
        (True, 10.0, 0.8, "evals must be an integer ≥ 1"),
        (20, 0.0, 0.8, "delta must be non-zero"),
        (20, 10.0, 0.5, r"ratio must lie in \(0.5, 1\)"),
        (20, 10.0, 1.0, r"ratio must lie in \(0.5, 1\)"),
    ],
)
def test_parameter_errors(evals, delta: float, ratio: float, message: str) -> None:
    with pytest.raises(ValueError, match=f"optimal_alie: {message}"):
        check_search("optimal_alie", evals, delta, ratio)
