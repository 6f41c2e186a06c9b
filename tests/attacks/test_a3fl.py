"""A3FL (REFERENCES D35): the shared checks, the signed trigger search (bounded steps, the
range, determinism, λ = 0 is plain search) and the server's re-derived success sets."""

from __future__ import annotations

import pytest
import torch
from attack_tester import DataAttackTester, client_round

from fedpoison.attacks import A3FL

QUICK = {"outer_epochs": 2, "adv_epochs": 1, "size": 3, "position": (1, 1)}


class TestA3FL(DataAttackTester):
    attack = A3FL
    params = QUICK


def _setup() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(32, 3, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g)
    return client_round(x, y).model, x, y  # type: ignore[return-value]


def test_each_step_moves_every_pixel_by_at_most_alpha_within_the_bounds() -> None:
    model, x, y = _setup()
    one = A3FL(**{**QUICK, "outer_epochs": 1, "batch_size": 32, "trigger_lr": 0.05})  # type: ignore[arg-type]
    trigger = one.search(model, x, y, seed=0)
    assert torch.allclose((trigger - 0.5).abs(), torch.full_like(trigger, 0.05))  # one step
    many = A3FL(**{**QUICK, "outer_epochs": 30, "trigger_lr": 0.1, "lam": 0.5})  # type: ignore[arg-type]
    searched = many.search(model, x, y, seed=0)
    assert float(searched.min()) >= 0.0 and float(searched.max()) <= 1.0
    assert torch.equal(searched, many.search(model, x, y, seed=0))  # deterministic


def test_lambda_zero_is_plain_signed_search_and_lowers_the_target_loss() -> None:
    model, x, y = _setup()
    plain = A3FL(**{**QUICK, "outer_epochs": 10, "lam": 0.0, "batch_size": 32, "trigger_lr": 0.05})  # type: ignore[arg-type]
    trigger = plain.search(model, x, y, seed=0)
    naive = torch.full((3, 3, 3), 0.5)
    for _ in range(10):  # one batch per iteration: a naive transcription of the signed step
        t = naive.clone().requires_grad_(True)
        loss = torch.nn.functional.cross_entropy(
            model(plain.apply_trigger(x, t)), torch.full_like(y, 2)
        )
        (grad,) = torch.autograd.grad(loss, t)
        naive = (naive - 0.05 * grad.sign()).clamp(0, 1)
    assert torch.allclose(trigger, naive)

    def target_loss(t: torch.Tensor | None) -> float:
        bound = A3FL(**QUICK)  # type: ignore[arg-type]
        bound.trigger = t
        with torch.no_grad():
            return float(
                torch.nn.functional.cross_entropy(
                    model(bound.apply_trigger(x)), torch.full_like(y, 2)
                )
            )

    assert target_loss(trigger) < target_loss(None)


def test_for_client_searches_on_the_leader_and_leaves_the_model() -> None:
    _, x, y = _setup()
    client = client_round(x, y)
    before = [p.detach().clone() for p in client.parameters()]
    attack = A3FL(**QUICK)  # type: ignore[arg-type]
    bound = attack.for_client(client)
    assert isinstance(bound, A3FL) and bound.trigger is not None and attack.trigger is None
    assert all(torch.equal(a, b) for a, b in zip(before, client.parameters(), strict=True))
    assert attack.success_depends_on_model()
    sx, _ = bound.success_set(x, y)
    assert torch.equal(sx[:, :, 1:4, 1:4], bound.trigger.expand(sx.shape[0], 3, 3, 3))


def test_a3fl_errors() -> None:
    with pytest.raises(ValueError, match="a3fl"):
        A3FL(size=0)
    with pytest.raises(ValueError, match="a3fl"):
        A3FL(low=1.0, high=0.0)
    import dataclasses

    _, x, y = _setup()
    with pytest.raises(ValueError, match="needs the model"):
        A3FL().for_client(dataclasses.replace(client_round(x, y), model=None))
