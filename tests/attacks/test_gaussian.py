"""Gaussian noise (Blanchard / Fang modes): the shared attack checks, the variance, the known
statistics and the generator."""

from __future__ import annotations

import pytest
import torch
from attack_tester import AttackTester

from fedpoison.attacks import Gaussian, gaussian_attack


class TestGaussian(AttackTester):
    attack = Gaussian


class TestGaussianFang(AttackTester):
    attack = Gaussian
    params = {"mode": "fang"}


def test_gaussian_blanchard_variance() -> None:
    known = torch.zeros(1, 4000)
    out = gaussian_attack(known, 5, torch.Generator().manual_seed(0), variance=200.0)
    assert out.shape == (5, 4000)
    assert out.mean().abs() < 0.5
    assert out.var().item() == pytest.approx(200.0, rel=0.05)


def test_gaussian_fang_uses_known_statistics() -> None:
    known = torch.tensor([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0]])
    out = gaussian_attack(known, 20000, torch.Generator().manual_seed(1), mode="fang")
    assert torch.allclose(out.mean(0), torch.tensor([2.0, 10.0]), atol=0.05)
    assert torch.allclose(out.std(0), known.std(0, correction=0), atol=0.05)
    assert torch.all(out[:, 1] == 10.0)  # zero spread ⇒ no noise


def test_gaussian_deterministic_per_generator(make_view) -> None:
    own, benign = torch.randn(3, 6), torch.randn(5, 6)
    a = Gaussian().craft(make_view(own, benign, seed=4)).updates
    b = Gaussian().craft(make_view(own, benign, seed=4)).updates
    c = Gaussian().craft(make_view(own, benign, seed=5)).updates
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="mode"):
        Gaussian(mode="uniform")  # type: ignore[arg-type]
