"""The blended backdoor (REFERENCES D31): the shared checks, the blend formula and its range."""

from __future__ import annotations

import pytest
import torch
from attack_tester import DataAttackTester
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.attacks import Blended
from fedpoison.attacks.triggers import blend


class TestBlended(DataAttackTester):
    attack = Blended


def test_blend_formula_and_endpoints() -> None:
    x, key = torch.full((1, 1, 2, 2), 0.2), torch.ones(1, 2, 2)
    assert torch.allclose(blend(x, key, 0.2), torch.full_like(x, 0.36))  # D31: 0.8·0.2 + 0.2
    assert torch.equal(blend(x, key, 0.0), x)
    assert torch.equal(blend(x, key, 1.0), key.expand_as(x))
    with pytest.raises(ValueError, match="alpha"):
        blend(x, key, 1.5)


@settings(max_examples=25, deadline=None)
@given(alpha=st.floats(0, 1), channels=st.sampled_from([1, 3]), seed=st.integers(0, 99))
def test_blended_stays_in_range_and_uses_the_test_alpha(
    alpha: float, channels: int, seed: int
) -> None:
    g = torch.Generator().manual_seed(seed)
    x, y = torch.rand(12, channels, 8, 8, generator=g), torch.randint(0, 10, (12,), generator=g)
    attack = Blended(alpha_train=alpha, alpha_test=1 - alpha, target=3, key_seed=seed)
    px, py = attack.poison(x, y, 10, torch.Generator().manual_seed(0))
    assert float(px.min()) >= 0.0 and float(px.max()) <= 1.0
    changed = (py == 3) & (y != 3)
    key = attack.key((channels, 8, 8))
    assert torch.allclose(px[changed], (1 - alpha) * x[changed] + alpha * key, atol=1e-6)
    sx, sy = attack.success_set(x, y)
    keep = y != 3
    assert torch.allclose(sx, alpha * x[keep] + (1 - alpha) * key, atol=1e-6)
    assert torch.all(sy == 3)


def test_blended_key_is_shared_and_checks() -> None:
    assert torch.equal(Blended().key((3, 4, 4)), Blended().key((3, 4, 4)))
    assert not torch.equal(Blended().key((3, 4, 4)), Blended(key_seed=1).key((3, 4, 4)))
    for bad in ({"alpha_train": -0.1}, {"alpha_test": 2.0}, {"low": 1.0, "high": 0.0}):
        with pytest.raises(ValueError, match="blended"):
            Blended(**bad)  # type: ignore[arg-type]
