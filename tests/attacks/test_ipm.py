"""IPM (Xie et al. 2019): the shared attack checks and −ε × the benign mean."""

from __future__ import annotations

import pytest
import torch
from attack_tester import AttackTester

from fedpoison.attacks import IPM, ipm_attack


class TestIPM(AttackTester):
    attack = IPM


def test_ipm_is_minus_eps_benign_mean(make_view) -> None:
    benign = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    own = torch.tensor([[100.0, 100.0]] * 3)
    view = make_view(own, benign)
    out = IPM(epsilon=0.5).craft(view).updates
    assert torch.allclose(out, torch.tensor([[-1.0, -2.0]] * 3))
    assert torch.allclose(ipm_attack(benign, 2), torch.tensor([[-0.2, -0.4]] * 2))
    with pytest.raises(ValueError, match="knowledge=all"):
        IPM().craft(make_view(own, benign, knowledge="own"))
