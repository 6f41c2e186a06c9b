"""Norm clipping: the shared rule checks and the bounded influence of each row."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rule_tester import RuleTester, matrices, with_byzantine_rows

from fedpoison.aggregators import norm_clipping
from fedpoison.aggregators.norm_clipping import NormClipping


class TestNormClipping(RuleTester):
    """Not unanimous: equal rows longer than ``max_norm`` come back clipped."""

    rule = NormClipping


@settings(max_examples=30, deadline=None)
@given(
    case=matrices(min_rows_for_f=lambda f: f + 1),
    byzantine=st.lists(st.floats(-1e9, 1e9), min_size=12, max_size=12),
    tau=st.floats(0.1, 10),
)
def test_each_row_moves_the_aggregate_by_at_most_tau_over_n(case, byzantine, tau) -> None:
    """f rows changed arbitrarily move the result by at most 2fτ/n."""
    x, f = case
    n = x.shape[0]
    y = with_byzantine_rows(x, f, byzantine)
    moved = norm_clipping(x, tau) - norm_clipping(y, tau)
    assert float(moved.norm()) <= 2 * f * tau / n * (1 + 1e-9) + 1e-12
