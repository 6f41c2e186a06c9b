"""Fang et al. 2020 attack on Krum (docs/conventions.md §C22), in delta form: the shared attack
checks, λ₀ (Eq. 3) and the full- and partial-knowledge searches (Eq. 4: test_fang_krum_partial.py).
"""

from __future__ import annotations

import math

import pytest
import torch
from attack_tester import AttackTester

from fedpoison.aggregators.krum import krum
from fedpoison.attacks import FangKrum
from fedpoison.attacks.fang_krum import LAMBDA_MIN, fang_krum_lambda0


class TestFangKrum(AttackTester):
    attack = FangKrum


class TestFangKrumPartial(AttackTester):
    attack = FangKrum
    params = {"knowledge": "own"}


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
