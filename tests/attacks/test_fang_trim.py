"""Fang et al. 2020 attack on trimmed mean / median (docs/conventions.md §C23), in delta form: the
shared attack checks, the full- and partial-knowledge intervals."""

from __future__ import annotations

import torch
from attack_tester import AttackTester

from fedpoison.attacks import FangTrim, fang_trim_full, fang_trim_partial


class TestFangTrim(AttackTester):
    attack = FangTrim


class TestFangTrimPartial(AttackTester):
    attack = FangTrim
    params = {"knowledge": "own"}


def _interval(s: float, hi: float, lo: float, b: float) -> tuple[float, float]:
    """Naive transcription of D12 (full knowledge) on deltas."""
    if s < 0:
        return (hi, b * hi) if hi > 0 else (hi, hi / b)
    return (lo / b, lo) if lo > 0 else (b * lo, lo)


def test_fang_trim_full_intervals() -> None:
    benign = torch.tensor(
        [[1.0, -1.0, 2.0, -3.0, 0.5], [2.0, -2.0, 3.0, -1.0, -0.5], [1.5, -0.5, 4.0, -2.0, 0.1]]
    )
    s = torch.tensor([-1.0, -1.0, 1.0, 1.0, 1.0])
    out = fang_trim_full(benign, s, 50, torch.Generator().manual_seed(0), b=2.0)
    assert out.shape == (50, 5)
    hi, lo = benign.max(0).values, benign.min(0).values
    for j in range(5):
        a, c = _interval(float(s[j]), float(hi[j]), float(lo[j]), 2.0)
        assert torch.all(out[:, j] >= a - 1e-6) and torch.all(out[:, j] <= c + 1e-6), j
        assert out[:, j].unique().numel() > 1  # independent draws per attacker


def test_fang_trim_partial_intervals() -> None:
    own = torch.tensor([[1.0, -1.0], [3.0, -2.0], [2.0, -6.0]])
    out = fang_trim_partial(own, 40, torch.Generator().manual_seed(1))
    mu, sigma = own.mean(0), own.std(0, correction=0)
    # coordinate 0: mean > 0 (s̃ = +1) ⇒ [μ−4σ, μ−3σ]; coordinate 1: s̃ = −1 ⇒ [μ+3σ, μ+4σ]
    assert torch.all(out[:, 0] >= mu[0] - 4 * sigma[0] - 1e-6)
    assert torch.all(out[:, 0] <= mu[0] - 3 * sigma[0] + 1e-6)
    assert torch.all(out[:, 1] >= mu[1] + 3 * sigma[1] - 1e-6)
    assert torch.all(out[:, 1] <= mu[1] + 4 * sigma[1] + 1e-6)


def test_fang_trim_class_uses_view(make_view) -> None:
    own, benign = torch.randn(3, 6), torch.randn(7, 6)
    full = FangTrim().craft(make_view(own, benign, seed=2)).updates
    s = torch.sign(torch.cat([own, benign]).mean(0))
    hi, lo = benign.max(0).values, benign.min(0).values
    for j in range(6):
        a, c = _interval(float(s[j]), float(hi[j]), float(lo[j]), 2.0)
        assert torch.all((full[:, j] >= a - 1e-6) & (full[:, j] <= c + 1e-6))
    own_view = make_view(own, benign, knowledge="own", seed=2)
    assert torch.equal(
        FangTrim(knowledge="own").craft(own_view).updates,
        fang_trim_partial(own, 3, torch.Generator().manual_seed(2)),
    )
