"""Reported-size inflation: the shared attack checks and the inflated counts, alone or around
another update attack."""

from __future__ import annotations

import pytest
import torch
from attack_tester import AttackTester

from fedpoison.aggregators import Defense, FLTrust, Krum
from fedpoison.attacks import IPM, NumExamplesInflation, OptimalIPM, SignFlip


class TestNumExamplesInflation(AttackTester):
    attack = NumExamplesInflation


def test_num_examples_inflation(make_view) -> None:
    own, benign = torch.randn(3, 4), torch.randn(5, 4)
    view = make_view(own, benign, knowledge="own")
    replies = NumExamplesInflation(value=123).craft(view)
    assert torch.equal(replies.updates, own)
    assert replies.num_examples is not None
    assert replies.num_examples.dtype == torch.int64
    assert replies.num_examples.tolist() == [123, 123, 123]
    wrapped = NumExamplesInflation(base=SignFlip()).craft(view)
    assert torch.equal(wrapped.updates, -own)
    assert NumExamplesInflation(base=IPM()).required_knowledge() == "all"


def test_a_wrapped_base_checks_the_defense() -> None:
    """Before round 1 the base attack's ``check_defense`` runs on the deployed pipeline."""
    with pytest.raises(ValueError, match="attack optimal_ipm cannot simulate defense fltrust"):
        NumExamplesInflation(base=OptimalIPM()).check_defense(Defense(FLTrust()))
    NumExamplesInflation(base=OptimalIPM()).check_defense(Defense(Krum()))
    NumExamplesInflation().check_defense(Defense(FLTrust()))
