"""PGD (REFERENCES D33): the shared checks, the projection against a naive oracle, the bound
after hooked local training and the boost after the projection."""

from __future__ import annotations

import math

import pytest
import torch
from attack_tester import DataAttackTester, client_round
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.attacks import PGD, project
from fedpoison.attacks.shaping import flat
from fedpoison.training.local import LocalTraining, local_train


class TestPGD(DataAttackTester):
    attack = PGD
    params = {"eps": 0.05, "project_every": 2}


class TestPGDBoosted(DataAttackTester):
    attack = PGD
    params = {"eps": 0.05, "scale": 5.0}


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(-10, 10, allow_nan=False), min_size=1, max_size=8),
    eps=st.floats(0.01, 5),
)
def test_projection_matches_the_naive_formula(values: list[float], eps: float) -> None:
    delta = torch.tensor(values, dtype=torch.float64)
    norm = math.sqrt(sum(v * v for v in values))
    naive = [v * eps / norm for v in values] if norm > eps else values  # identity inside
    assert torch.allclose(project(delta, eps), torch.tensor(naive, dtype=torch.float64))
    assert float(torch.linalg.vector_norm(project(delta, eps))) <= eps + 1e-9
    assert torch.equal(project(delta, eps, "linf"), delta.clamp(-eps, eps))


def _train(attack: PGD, steps: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(40, 1, 8, 8, generator=g), torch.randint(0, 10, (40,), generator=g)
    client = client_round(x, y)
    start = flat(client.parameters())
    px, py = attack.poison(x, y, 10, torch.Generator().manual_seed(1))
    cfg = LocalTraining(lr=0.5, batch_size=8, local_steps=steps)
    local_train(
        client.model,
        px,
        py,
        cfg,
        torch.Generator().manual_seed(2),  # type: ignore[arg-type]
        torch.device("cpu"),
        attack.shaping(client),
    )
    return start, flat(client.parameters())


@pytest.mark.parametrize("every", [1, 3, 10])
def test_update_is_within_eps_after_training(every: int) -> None:
    start, end = _train(PGD(eps=0.1, project_every=every))
    assert float(torch.linalg.vector_norm(end - start)) <= 0.1 + 1e-6
    free_start, free_end = _train(PGD(eps=1e6))
    assert float(torch.linalg.vector_norm(free_end - free_start)) > 0.1  # the bound binds


def test_scaled_update_is_the_factor_times_the_projected_one() -> None:
    start, projected = _train(PGD(eps=0.1))
    _, boosted = _train(PGD(eps=0.1, scale=4.0))
    assert torch.allclose(boosted - start, 4.0 * (projected - start), atol=1e-6)


def test_pgd_errors() -> None:
    for bad in ({"eps": 0}, {"project_every": 0}, {"norm": "l1"}, {"scale": -1.0}):
        with pytest.raises(ValueError, match="pgd"):
            PGD(**bad)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="DataAttack"):
        PGD(poison="backdoor")  # type: ignore[arg-type]
