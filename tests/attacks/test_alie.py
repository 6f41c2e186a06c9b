"""ALIE: the shared attack checks, z_max table (docs/conventions.md §C19), the formula, statistics
sources, properties."""

from __future__ import annotations

import math

import pytest
import torch
from attack_tester import AttackTester
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.attacks import ALIE, alie_attack, alie_z_max


class TestALIE(AttackTester):
    attack = ALIE


class TestALIEBenign(AttackTester):
    attack = ALIE
    params = {"stat_source": "benign"}


@pytest.mark.parametrize(
    ("n", "f", "z"),
    [
        (50, 10, 0.2533),
        (51, 12, 0.361),
        (100, 20, 0.286),
        (20, 4, 0.157),
        (10, 2, 0.000),
        (50, 12, 0.336),
        (25, 5, 0.253),
        (60, 12, 0.264),
    ],
)
def test_z_max_table(n: int, f: int, z: float) -> None:
    assert alie_z_max(n, f) == pytest.approx(z, abs=6e-4)


def test_z_max_naive_transcription() -> None:
    from scipy.stats import norm

    for n in range(3, 40):
        for f in range(0, n // 2 + 1):
            s = math.floor(n / 2 + 1) - f
            assert alie_z_max(n, f) == pytest.approx(norm.ppf((n - f - s) / (n - f)))


@pytest.mark.parametrize(("n", "f"), [(2, 0), (10, 6), (5, 5), (4, -1)])
def test_z_max_rejects_infinite_or_invalid(n: int, f: int) -> None:
    with pytest.raises(ValueError, match="alie_z_max"):
        alie_z_max(n, f)


def test_formula_hand_made() -> None:
    known = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 8.0]])
    mu = torch.tensor([2.0, 4.0])
    pop_std = known.std(dim=0, correction=0)
    out = alie_attack(known, 2, 1.5)
    assert torch.allclose(out, (mu + 1.5 * pop_std).expand(2, 2))
    out = alie_attack(known, 2, 1.5, sign=-1, unbiased_std=True)
    assert torch.allclose(out, (mu - 1.5 * known.std(dim=0)).expand(2, 2))


def test_default_z_is_z_max_of_round(make_view) -> None:
    own, benign = torch.randn(2, 5), torch.randn(8, 5)
    view = make_view(own, benign, knowledge="all")
    out = ALIE().craft(view).updates
    known = torch.cat([own, benign])
    expected = alie_attack(known, 2, alie_z_max(10, 2))
    assert torch.allclose(out, expected)


def test_stat_sources(make_view) -> None:
    own, benign = torch.randn(3, 4), torch.randn(9, 4)
    view = make_view(own, benign, knowledge="all")
    z = alie_z_max(12, 3)
    assert torch.allclose(ALIE(stat_source="own").craft(view).updates, alie_attack(own, 3, z))
    assert torch.allclose(ALIE(stat_source="benign").craft(view).updates, alie_attack(benign, 3, z))
    own_view = make_view(own, benign, knowledge="own")
    assert torch.allclose(ALIE().craft(own_view).updates, alie_attack(own, 3, z))
    assert ALIE(stat_source="benign").required_knowledge() == "all"
    assert ALIE().required_knowledge() == "own"


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(1, 8),
    m=st.integers(1, 4),
    d=st.integers(1, 6),
    z=st.floats(-3, 3),
    seed=st.integers(0, 2**16),
    double=st.booleans(),
)
def test_within_mu_plus_minus_z_sigma(
    k: int, m: int, d: int, z: float, seed: int, double: bool
) -> None:
    dtype = torch.float64 if double else torch.float32
    known = torch.randn(k, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)
    before = known.clone()
    out = alie_attack(known, m, z)
    mu, sigma = known.mean(0), known.std(0, correction=0)
    tol = 1e-5
    assert out.shape == (m, d) and out.dtype == dtype
    assert torch.all(out >= mu - abs(z) * sigma - tol) and torch.all(
        out <= mu + abs(z) * sigma + tol
    )
    assert torch.equal(out, out[:1].expand(m, d))  # all attackers send the same vector
    assert torch.equal(known, before)
