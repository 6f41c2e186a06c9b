"""Model replacement scaling (Bagdasaryan et al. 2020): the shared attack checks and γ = n/η."""

from __future__ import annotations

import pytest
import torch
from attack_tester import AttackTester

from fedpoison.attacks import Scaling, replacement_gamma


class TestScaling(AttackTester):
    attack = Scaling


def test_scaling_gamma_is_n_over_eta(make_view) -> None:
    own, benign = torch.randn(2, 3), torch.randn(8, 3)
    view = make_view(own, benign, knowledge="own", server_lr=0.5)
    assert replacement_gamma(10, 0.5) == 20.0
    assert torch.allclose(Scaling().craft(view).updates, 20.0 * own)
    assert torch.allclose(Scaling(gamma=7.0).craft(view).updates, 7.0 * own)
    with pytest.raises(ValueError, match="server_lr"):
        replacement_gamma(10, 0.0)
