"""Sign flipping: the shared attack checks and the exact formula."""

from __future__ import annotations

import torch
from attack_tester import AttackTester

from fedpoison.attacks import SignFlip


class TestSignFlip(AttackTester):
    attack = SignFlip


def test_sign_flip(make_view) -> None:
    own = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    view = make_view(own, torch.randn(3, 2), knowledge="own")
    assert torch.equal(SignFlip().craft(view).updates, -own)
    assert torch.equal(SignFlip(scale=3.0).craft(view).updates, -3.0 * own)
    assert SignFlip().craft(view).num_examples is None
