"""Min-Sum (Shejwalkar & Houmansadr 2021; docs/conventions.md §C21): the shared attack checks and
its two bounds (γ: test_shejwalkar.py)."""

from __future__ import annotations

import torch
from attack_tester import AttackTester

from fedpoison.attacks import MinSum, min_sum_attack


class TestMinSum(AttackTester):
    attack = MinSum


class TestMinSumPartial(AttackTester):
    attack = MinSum
    params = {"knowledge": "own", "bound": "min"}


def test_min_sum_bounds_differ() -> None:
    ref = torch.randn(6, 4, generator=torch.Generator().manual_seed(3))
    loose = min_sum_attack(ref, 2, bound="max")
    strict = min_sum_attack(ref, 2, bound="min")
    center = ref.mean(0)
    assert not torch.allclose(loose, strict)
    assert (loose[0] - center).norm() > (strict[0] - center).norm()
