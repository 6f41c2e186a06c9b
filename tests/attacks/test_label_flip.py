"""Label flipping: the shared data-attack checks, exact fractions, the mapping and determinism."""

from __future__ import annotations

import pytest
import torch
from attack_tester import DataAttackTester
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.attacks import LabelFlip


class TestLabelFlip(DataAttackTester):
    attack = LabelFlip


def _data(n: int, shape: tuple[int, int, int], classes: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, *shape), generator=g), torch.randint(0, classes, (n,), generator=g)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 60), fraction=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_label_flip_exact_fraction_and_no_mutation(n: int, fraction: float, seed: int) -> None:
    x, y = _data(n, (1, 8, 8), seed=seed)
    x0, y0 = x.clone(), y.clone()
    px, py = LabelFlip(poison_fraction=fraction).poison(
        x, y, 10, torch.Generator().manual_seed(seed)
    )
    assert torch.equal(x, x0) and torch.equal(y, y0)
    assert torch.equal(px, x)
    changed = py != y
    assert int(changed.sum()) == int(fraction * n)  # 10 classes: l → 9−l always changes l
    assert torch.equal(py[changed], 9 - y[changed])


def test_label_flip_mapping_and_determinism() -> None:
    y = torch.tensor([7, 7, 7, 7, 1, 2, 3, 7])
    x = torch.zeros(8, 1, 4, 4)
    attack = LabelFlip(mapping={7: 1}, poison_fraction=0.5)
    _, a = attack.poison(x, y, 10, torch.Generator().manual_seed(3))
    _, b = attack.poison(x, y, 10, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert int((a != y).sum()) == 2  # ⌊0.5 · 5 eligible⌋
    assert torch.all(a[a != y] == 1) and torch.all(a[y != 7] == y[y != 7])
    with pytest.raises(ValueError, match="outside"):
        LabelFlip(mapping={12: 0}).poison(x, y, 10, torch.Generator())
