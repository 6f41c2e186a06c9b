"""Infinity (ByzFL's Inf): the shared attack checks (its rows are the non-finite exception),
+∞ in the updates' dtype, and every registered rule refusing the rows by name (no NaN)."""

from __future__ import annotations

import math
import re

import pytest
import torch
from attack_tester import AttackTester
from fedpoison_testing import round_context

from fedpoison.aggregators import AGGREGATORS
from fedpoison.attacks import Infinity, infinity_attack


class TestInfinity(AttackTester):
    attack = Infinity
    finite = False


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_rows_are_plus_infinity_in_the_updates_dtype(make_view, dtype: torch.dtype) -> None:
    own, benign = torch.randn(3, 5, dtype=dtype), torch.randn(7, 5, dtype=dtype)
    rows = Infinity().craft(make_view(own, benign, knowledge="own")).updates
    assert rows.dtype == dtype and rows.shape == (3, 5)
    assert all(v == math.inf for v in rows.flatten().tolist())
    assert torch.equal(infinity_attack(own, 2), torch.full((2, 5), math.inf, dtype=dtype))


@pytest.mark.parametrize("name", AGGREGATORS.names())
def test_every_rule_refuses_the_inf_rows_by_name(name: str) -> None:
    """A rule gives a finite output or a ValueError naming the rows; every rule refuses."""
    g = torch.Generator().manual_seed(0)
    honest = torch.randn(11, 6, generator=g, dtype=torch.float64)
    x = torch.cat([infinity_attack(honest, 2), honest[2:]])
    rule = AGGREGATORS.get(name)()
    message = f"{name}: updates contain NaN/Inf in rows [0, 1]"
    with pytest.raises(ValueError, match=re.escape(message)):
        rule(x, round_context(x, 2, server_update=honest.mean(dim=0)))
