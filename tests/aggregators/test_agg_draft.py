"""The float32 draft of the Krum distances (``PairwiseSquaredDistances(draft=True)``) must
select exactly what the exact path selects: refinement settles every close call, and
overflow, underflow, offsets and exact ties all end in the exact path's answer."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.aggregators import krum, multi_krum
from fedpoison.aggregators._linalg import PairwiseSquaredDistances
from fedpoison.aggregators.krum import krum_select, lowest_scores

settings.register_profile("draft", max_examples=40, deadline=None)


def exact_selection(x: torch.Tensor, f: int, m: int) -> torch.Tensor:
    """The selection of the exact (float64 Gram) path on the same float32 rows."""
    return lowest_scores(PairwiseSquaredDistances(x), x.shape[0] - f - 2, m)


@st.composite
def close_calls(draw):
    """``(x, f, m)``: float32 rows whose Krum scores differ by about the draft's bound or
    less: a common point plus tiny perturbations, duplicated rows (exact ties), an offset
    or a scale that under- or overflows float32 squares."""
    f = draw(st.integers(0, 3))
    n = 2 * f + 3 + draw(st.integers(0, 8))
    d = draw(st.integers(1, 40))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    spread = draw(st.sampled_from([1e-6, 1e-4, 1e-2, 1.0]))
    x = torch.ones(n, d) + spread * torch.randn(n, d, generator=g)
    if draw(st.booleans()):
        x[draw(st.integers(0, n - 1))] = x[draw(st.integers(0, n - 1))]  # an exact tie
    x = x * draw(st.sampled_from([1e-25, 1.0, 1e4, 1e18]))
    x = x + draw(st.sampled_from([0.0, 3.0, -1e3]))
    return x.to(torch.float32), f, draw(st.integers(1, n))


@settings(settings.get_profile("draft"))
@given(close_calls())
def test_draft_selects_what_the_exact_path_selects(case) -> None:
    x, f, m = case
    assert torch.equal(krum_select(x, f, m, "multi_krum"), exact_selection(x, f, m))


def test_refinement_settles_a_close_call() -> None:
    """Points 0, 1, 2, 3+δ, 10 on a line (f = 0, three neighbours): rows 1 and 2 score
    6 + 4δ + δ² and 6 + 2δ + δ². With δ = 2⁻¹⁰ the gap is below the draft's bound for
    d = 4096 and far above the exact path's, so the draft must refine both rows and pick
    row 2 (a tie would go to row 1)."""
    x = torch.zeros(5, 4096)
    x[:, 0] = torch.tensor([0.0, 1.0, 2.0, 3.0 + 2.0**-10, 10.0])
    pd = PairwiseSquaredDistances(x, draft=True)
    chosen = lowest_scores(pd, 3, 1)
    assert pd.exact.tolist() == [False, True, True, False, False]
    assert chosen.tolist() == [False, False, True, False, False]
    assert torch.equal(chosen, exact_selection(x, 0, 1))


@pytest.mark.parametrize("scale", [1e19, 1e-30])
def test_float32_extremes_fall_back_or_refine(scale: float) -> None:
    """Squares that overflow float32 use the exact path; squares that underflow make every
    draft distance uncertain, so the close calls are refined."""
    g = torch.Generator().manual_seed(1)
    x = (torch.randn(12, 50, generator=g) * scale).to(torch.float32)
    assert torch.equal(krum_select(x, 2, 5, "multi_krum"), exact_selection(x, 2, 5))


def test_large_offset_uses_the_exact_path() -> None:
    """Rows far from the origin compared with their spread skip the (uncentred) draft."""
    x = 1e4 + torch.randn(10, 30, generator=torch.Generator().manual_seed(2))
    assert bool(PairwiseSquaredDistances(x, draft=True).exact.all())


def test_float64_and_reduced_precision_skip_the_draft(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.randn(10, 30, generator=torch.Generator().manual_seed(3))
    assert bool(PairwiseSquaredDistances(x.double(), draft=True).exact.all())
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        assert bool(PairwiseSquaredDistances(x, draft=True).exact.all())
    finally:
        torch.set_float32_matmul_precision(before)
    assert not bool(PairwiseSquaredDistances(x, draft=True).exact.all())

    def per_backend_api() -> str:  # what torch raises once precision is set per backend
        raise RuntimeError("PyTorch is checking the matmul precision without a backend name")

    monkeypatch.setattr(torch, "get_float32_matmul_precision", per_backend_api)
    assert bool(PairwiseSquaredDistances(x, draft=True).exact.all())


def test_float32_krum_and_multi_krum_equal_their_float64_selection() -> None:
    """Gaussian rows (scores within ~1e-4 of each other) in float32 and float64 input."""
    x = torch.randn(40, 20_000, generator=torch.Generator().manual_seed(4))
    f = 8
    assert torch.equal(krum(x, f), x[int(exact_selection(x, f, 1).nonzero()[0, 0])])
    mask = exact_selection(x, f, 40 - f)
    assert torch.allclose(multi_krum(x, f), x[mask].mean(dim=0), rtol=0, atol=1e-6)
