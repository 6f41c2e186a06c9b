"""Fang et al. 2020 Krum and trimmed-mean attacks (docs/conventions.md §C22, §C23), in delta
form."""

from __future__ import annotations

import math

import pytest
import torch

from fedpoison.aggregators.krum import krum
from fedpoison.attacks import FangKrum, FangTrim, fang_trim_full, fang_trim_partial
from fedpoison.attacks.fang_krum import LAMBDA_MIN, fang_krum_lambda0


def _interval(s: float, hi: float, lo: float, b: float) -> tuple[float, float]:
    """Naive transcription of Fang et al. §3.3 (full knowledge, §C23) on deltas."""
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


def _naive_lambda0(benign: torch.Tensor, n: int, c: int) -> float:
    d = benign.shape[1]
    sums = []
    for i in range(benign.shape[0]):
        dists = sorted(
            float((benign[i] - benign[j]).norm()) for j in range(benign.shape[0]) if j != i
        )
        sums.append(sum(dists[: n - c - 2]))
    far = max(float(r.norm()) for r in benign)
    return min(sums) / ((n - 2 * c - 1) * math.sqrt(d)) + far / math.sqrt(d)


def test_fang_krum_lambda0_eq3() -> None:
    benign = torch.randn(9, 4, generator=torch.Generator().manual_seed(0))
    assert fang_krum_lambda0(benign, 12, 3) == pytest.approx(
        _naive_lambda0(benign, 12, 3), rel=1e-6
    )


@pytest.mark.parametrize("seed", range(3))
def test_fang_krum_full_knowledge(seed: int, make_view) -> None:
    g = torch.Generator().manual_seed(seed)
    benign = 0.1 * torch.randn(9, 8, generator=g) + 0.05
    own = 0.1 * torch.randn(3, 8, generator=g) + 0.05
    out = FangKrum().craft(make_view(own, benign, seed=seed)).updates
    assert out.shape == (3, 8)
    s = torch.sign(torch.cat([own, benign]).mean(0))
    lam = float(-(out[0] * s).mean())
    assert torch.allclose(out[0], -lam * s)
    assert LAMBDA_MIN <= lam <= fang_krum_lambda0(benign, 12, 3)
    crafted = out[0]
    assert torch.equal(krum(torch.cat([crafted.expand(3, 8), benign]), 3), crafted)
    doubled = -2 * lam * s
    if 2 * lam <= fang_krum_lambda0(benign, 12, 3):  # λ is the first one selected on the way down
        assert not torch.equal(krum(torch.cat([doubled.expand(3, 8), benign]), 3), doubled)
    assert torch.all((out[1:] - crafted).norm(dim=1) <= 0.01 + 1e-6)


def test_fang_krum_partial_knowledge(make_view) -> None:
    own, benign = torch.randn(4, 5) + 0.2, torch.randn(9, 5)
    view = make_view(own, benign, knowledge="own")
    out = FangKrum(knowledge="own").craft(view).updates
    s = torch.sign(own.mean(0))
    lam = float(-(out[0] * s).mean())
    assert lam > 0 and torch.allclose(out[0], -lam * s)
    assert torch.all((out[1:] - out[0]).norm(dim=1) <= 0.01 + 1e-6)
    with pytest.raises(ValueError, match="knowledge=all"):
        FangKrum().craft(view)
