"""The BadNets backdoor: the shared data-attack checks, the trigger, its positions, the exact
fraction and the success set."""

from __future__ import annotations

import pytest
import torch
from attack_tester import DataAttackTester

from fedpoison.attacks import Backdoor


class TestBackdoor(DataAttackTester):
    attack = Backdoor


def _data(n: int, shape: tuple[int, int, int], classes: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand((n, *shape), generator=g), torch.randint(0, classes, (n,), generator=g)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_backdoor_trigger_and_fraction(shape: tuple[int, int, int]) -> None:
    x, y = _data(40, shape)
    x0, y0 = x.clone(), y.clone()
    attack = Backdoor(size=3, value=1.0, target=0, poison_fraction=0.5)
    px, py = attack.poison(x, y, 10, torch.Generator().manual_seed(0))
    assert torch.equal(x, x0) and torch.equal(y, y0)
    h, w = shape[1], shape[2]
    triggered = (px[:, :, h - 3 :, w - 3 :] == 1.0).flatten(1).all(dim=1)  # rand < 1: no accidents
    assert int(triggered.sum()) == 20  # exactly ⌊0.5 · 40⌋
    assert torch.all(py[triggered] == 0) and torch.equal(py[~triggered], y[~triggered])
    assert torch.equal(px[~triggered], x[~triggered])
    mask = torch.ones(shape, dtype=torch.bool)
    mask[:, h - 3 :, w - 3 :] = False
    assert torch.equal(px[:, mask], x[:, mask])  # nothing outside the square changes


def test_backdoor_positions() -> None:
    x = torch.zeros(2, 1, 8, 8)
    top = Backdoor(size=2, position="top_left", value=0.5).apply_trigger(x)
    assert torch.all(top[:, :, :2, :2] == 0.5) and top.sum() == 2 * 4 * 0.5
    at = Backdoor(size=2, position=[3, 4], value=1.0).apply_trigger(x)
    assert torch.all(at[:, :, 3:5, 4:6] == 1.0) and at.sum() == 8
    with pytest.raises(ValueError, match="does not fit"):
        Backdoor(size=3, position=(6, 6)).apply_trigger(x)
    assert torch.equal(x, torch.zeros(2, 1, 8, 8))


def test_backdoor_success_set_excludes_target() -> None:
    x, y = _data(50, (3, 32, 32))
    attack = Backdoor(target=2, size=4)
    sx, sy = attack.success_set(x, y)
    keep = y != 2
    assert sx.shape[0] == int(keep.sum()) and torch.all(sy == 2)
    assert torch.all(sx[:, :, -4:, -4:] == 1.0)
    assert torch.equal(sx[:, :, :28, :28], x[keep][:, :, :28, :28])


@pytest.mark.parametrize("channels", [1, 3])
def test_backdoor_patterns_and_seeded_positions(channels: int) -> None:
    x = torch.full((2, channels, 8, 8), 0.5)
    board = Backdoor(size=2, position="top_left", pattern="checkerboard", low=0.0)
    square = board.apply_trigger(x)[0, :, :2, :2]
    assert torch.equal(square, torch.tensor([[1.0, 0.0], [0.0, 1.0]]).expand(channels, 2, 2))
    noisy = Backdoor(size=3, pattern="random", pattern_seed=4)
    a, b = (
        noisy.apply_trigger(x),
        Backdoor(size=3, pattern="random", pattern_seed=4).apply_trigger(x),
    )
    assert torch.equal(a, b) and torch.equal(a[0], a[1])  # one pattern, shared
    patch = a[0, :, -3:, -3:]
    assert float(patch.min()) >= 0.0 and float(patch.max()) < 1.0
    assert channels == 1 or not torch.equal(patch[0], patch[1])  # colour on 3 channels
    placed = Backdoor(size=2, position="random", pattern_seed=7)
    first = placed.apply_trigger(x) == 1.0
    assert int(first[0, 0].sum()) == 4 and torch.equal(first, placed.apply_trigger(x) == 1.0)
    corner = Backdoor(size=2, position="top_right").apply_trigger(torch.zeros(1, 1, 4, 4))
    assert torch.equal(corner[0, 0, :2, 2:], torch.ones(2, 2)) and corner.sum() == 4
    with pytest.raises(ValueError, match="pattern must be"):
        Backdoor(pattern="stripes")
