"""Min-Max (Shejwalkar & Houmansadr 2021; docs/conventions.md §C21): the shared attack checks and
the full and partial reference sets (γ: test_shejwalkar.py)."""

from __future__ import annotations

import pytest
import torch
from attack_tester import AttackTester

from fedpoison.attacks import MinMax, MinSum, min_max_attack, min_sum_attack


class TestMinMax(AttackTester):
    attack = MinMax


class TestMinMaxPartial(AttackTester):
    attack = MinMax
    params = {"knowledge": "own"}


def test_full_and_partial_reference(make_view) -> None:
    own, benign = torch.randn(3, 4), torch.randn(9, 4)
    view = make_view(own, benign)
    assert torch.allclose(MinMax().craft(view).updates, min_max_attack(benign, 3))
    assert torch.allclose(MinMax(knowledge="own").craft(view).updates, min_max_attack(own, 3))
    assert torch.allclose(
        MinSum(bound="min", perturbation="sign").craft(view).updates,
        min_sum_attack(benign, 3, "sign", "min"),
    )
    own_view = make_view(own, benign, knowledge="own")
    assert torch.allclose(MinSum(knowledge="own").craft(own_view).updates, min_sum_attack(own, 3))
    assert (
        MinMax().required_knowledge() == "all"
        and MinMax(knowledge="own").required_knowledge() == "own"
    )
    with pytest.raises(ValueError, match="knowledge=all"):
        MinMax().craft(own_view)
