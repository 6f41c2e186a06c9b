"""Min-Max, Min-Sum and the AGR-tailored attack (Shejwalkar & Houmansadr 2021;
docs/conventions.md §C21)."""

from __future__ import annotations

import itertools

import pytest
import torch

from fedpoison.attacks import (
    Adaptive,
    MinMax,
    MinSum,
    adaptive_attack,
    min_max_attack,
    min_max_gamma,
    min_sum_attack,
    min_sum_gamma,
)
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


def test_min_sum_bounds_differ() -> None:
    ref = torch.randn(6, 4, generator=torch.Generator().manual_seed(3))
    loose = min_sum_attack(ref, 2, bound="max")
    strict = min_sum_attack(ref, 2, bound="min")
    center = ref.mean(0)
    assert not torch.allclose(loose, strict)
    assert (loose[0] - center).norm() > (strict[0] - center).norm()


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


def _official_tailored(benign: torch.Tensor, m: int, aggregate) -> torch.Tensor:
    """Naive transcription of the official AGR-tailored loop (trimmed-mean notebook)."""
    model_re = benign.mean(0)
    deviation = model_re / torch.norm(model_re)
    lamda, threshold_diff, prev_loss, lamda_fail, lamda_succ = 10.0, 1e-5, -1.0, 10.0, 0.0
    while abs(lamda_succ - lamda) > threshold_diff:
        mal_update = model_re - lamda * deviation
        mal_updates = torch.cat([torch.stack([mal_update] * m), benign])
        loss = float(torch.norm(aggregate(mal_updates) - model_re))
        if prev_loss < loss:
            lamda_succ = lamda
            lamda = lamda + lamda_fail / 2
        else:
            lamda = lamda - lamda_fail / 2
        lamda_fail = lamda_fail / 2
        prev_loss = loss
    return torch.stack([model_re - lamda_succ * deviation] * m)


@pytest.mark.parametrize("which", ["median", "mean"])
def test_adaptive_matches_official_loop(
    which: str, make_view, median_defense, mean_defense
) -> None:
    defense = median_defense if which == "median" else mean_defense
    own, benign = torch.randn(3, 5), torch.randn(8, 5, dtype=torch.float32)
    view = make_view(own, benign, knows_defense=True, defense=defense, f=3)
    out = Adaptive().craft(view).updates
    fn = (lambda r: r.median(0).values) if which == "median" else (lambda r: r.mean(0))
    assert torch.allclose(out, _official_tailored(benign, 3, fn), atol=1e-6)
    assert torch.allclose(out, adaptive_attack(benign, 3, fn), atol=1e-6)
    assert defense.calls == 0  # probes ran on copies: the server's rule is untouched


def test_adaptive_needs_defense(make_view, mean_defense) -> None:
    own, benign = torch.randn(2, 3), torch.randn(6, 3)
    view = make_view(own, benign, knows_defense=False, defense=mean_defense, f=2)
    assert view.defense is None and view.f is None
    with pytest.raises(ValueError, match="knows_defense"):
        Adaptive().craft(view)
    assert Adaptive().requires_defense()
