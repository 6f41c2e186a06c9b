"""The fast finiteness checks agree with ``torch.isfinite`` everywhere, overflowing sums of
finite entries included."""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.finite import all_finite, finite_rows

SPECIAL = [0.0, 1.0, -2.5, 3e38, -3e38, float("nan"), float("inf"), float("-inf")]


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(0, 7),
    st.lists(st.sampled_from(SPECIAL), min_size=42, max_size=42),
    st.sampled_from([torch.float32, torch.float64]),
)
def test_matches_isfinite(n: int, d: int, values: list[float], dtype: torch.dtype) -> None:
    x = torch.tensor(values[: n * d], dtype=dtype).reshape(n, d)
    assert all_finite(x) == bool(torch.isfinite(x).all())
    assert torch.equal(finite_rows(x), torch.isfinite(x).all(dim=1))


def test_overflowing_sum_of_finite_entries_is_finite() -> None:
    x = torch.full((3, 4), 3e38, dtype=torch.float32)
    x[1, 2] = float("nan")
    assert not all_finite(x) and all_finite(x[[0, 2]])
    assert finite_rows(x).tolist() == [True, False, True]
