"""The γ searches shared by Min-Max and Min-Sum (Shejwalkar & Houmansadr 2021, docs/conventions.md
§C21) against brute force; the attacks' own tests: test_min_max.py, test_min_sum.py,
test_adaptive.py."""

from __future__ import annotations

import itertools

import pytest
import torch

from fedpoison.attacks import min_max_attack, min_max_gamma, min_sum_gamma
from fedpoison.attacks.shejwalkar import halving_search, perturbation_vector

GRID = torch.arange(0.0, 20.0, 1e-3, dtype=torch.float64)


def _grid_distances(ref: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """Brute force: squared distances (G, k) of b − γp to every row, for every grid γ."""
    ref, p = ref.double(), p.double()
    mal = ref.mean(0) - GRID[:, None] * p  # (G, d)
    return ((mal[:, None, :] - ref[None, :, :]) ** 2).sum(-1)


def _naive_pairwise(ref: torch.Tensor) -> list[list[float]]:
    k = ref.shape[0]
    return [[float(((ref[i] - ref[j]).double() ** 2).sum()) for j in range(k)] for i in range(k)]


@pytest.mark.parametrize(("seed", "kind"), itertools.product(range(4), ["unit_vec", "std", "sign"]))
def test_min_max_gamma_is_largest_feasible(seed: int, kind: str) -> None:
    ref = torch.randn(7, 5, generator=torch.Generator().manual_seed(seed))
    p = perturbation_vector(ref, kind)  # type: ignore[arg-type]
    bound = max(max(row) for row in _naive_pairwise(ref))
    ok = _grid_distances(ref, p).max(dim=1).values <= bound
    grid_best = float(GRID[ok].max())
    assert grid_best < 19.0  # the bound binds inside the search range
    gamma = min_max_gamma(ref, p)
    assert grid_best - 1e-9 <= gamma < grid_best + 1e-3
    worst = max(float(((ref.mean(0) - gamma * p - r).double() ** 2).sum()) for r in ref)
    assert worst <= bound * (1 + 1e-9)


@pytest.mark.parametrize(("seed", "bound"), itertools.product(range(4), ["max", "min"]))
def test_min_sum_gamma_is_largest_feasible(seed: int, bound: str) -> None:
    ref = torch.randn(6, 4, generator=torch.Generator().manual_seed(10 + seed))
    p = perturbation_vector(ref, "unit_vec")
    scores = [sum(row) for row in _naive_pairwise(ref)]
    limit = max(scores) if bound == "max" else min(scores)
    ok = _grid_distances(ref, p).sum(dim=1) <= limit
    grid_best = float(GRID[ok].max())
    gamma = min_sum_gamma(ref, p, bound)  # type: ignore[arg-type]
    assert grid_best - 1e-9 <= gamma < grid_best + 1e-3


def test_attack_is_center_minus_gamma_p_in_delta_form() -> None:
    ref = torch.randn(8, 3, generator=torch.Generator().manual_seed(5))
    center = ref.mean(0)
    unit = min_max_attack(ref, 3, "unit_vec")
    gamma = min_max_gamma(ref, center / center.norm())
    assert torch.allclose(unit, (center - gamma * center / center.norm()).expand(3, 3), atol=1e-6)
    # std is an even perturbation: on deltas the attack moves along +std (official: grad − γ·std).
    std_out = min_max_attack(ref, 1, "std")[0]
    step = (std_out - center) / ref.std(0)
    assert torch.all(step > 0) and torch.allclose(step, step[0].expand(3), atol=1e-4)
    sign_out = min_max_attack(ref, 1, "sign")[0]
    assert torch.all((sign_out - center) * torch.sign(center) <= 0)


def test_halving_search_official_pseudocode() -> None:
    assert halving_search(lambda g: g <= 3.3) == pytest.approx(3.3, abs=1e-5)
    assert halving_search(lambda g: False) == 0.0
    assert halving_search(lambda g: True) == pytest.approx(20.0, abs=1e-4)
