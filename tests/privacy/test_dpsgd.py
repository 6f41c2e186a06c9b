"""DP-SGD: Opacus' step equals a naive per-example transcription (Abadi et al. 2016, Alg. 1)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fedpoison.models.resnet import resnet8
from fedpoison.models.simple import mlp
from fedpoison.privacy import DPSGD, Setting
from fedpoison.training.local import LocalTraining


def naive_dp_sgd_step(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    clip: float,
    z: float,
    lr: float,
    gen: torch.Generator,
) -> None:
    """g̃ = (Σ_i g_i·min(1, C/(‖g_i‖ + 1e-6)) + N(0, (zC)²)) / B; w ← w − lr·g̃
    (noise drawn per parameter)."""
    params = list(model.parameters())
    summed = [torch.zeros_like(p) for p in params]
    for i in range(len(y)):
        grads = torch.autograd.grad(F.cross_entropy(model(x[i : i + 1]), y[i : i + 1]), params)
        norm = torch.sqrt(sum((g.reshape(-1).norm() ** 2 for g in grads), torch.tensor(0.0)))
        factor = (clip / (norm + 1e-6)).clamp(max=1.0)
        for s, g in zip(summed, grads, strict=True):
            s += factor * g
    with torch.no_grad():
        for p, s in zip(params, summed, strict=True):
            noise = torch.normal(mean=0, std=z * clip, size=s.shape, generator=gen, dtype=s.dtype)
            p -= lr * (s + noise) / len(y)


def test_one_step_matches_the_naive_transcription() -> None:
    torch.manual_seed(0)
    x, y = torch.randn(8, 1, 8, 8), torch.randint(0, 10, (8,))
    model = mlp((1, 8, 8), 10)
    reference = mlp((1, 8, 8), 10)
    reference.load_state_dict(model.state_dict())
    procedure = LocalTraining(lr=0.5, batch_size=8, local_steps=1)
    dp = DPSGD(max_grad_norm=0.3, noise_multiplier=0.7)
    dp.train(
        model,
        x,
        y,
        procedure,
        torch.Generator().manual_seed(1),
        torch.Generator().manual_seed(2),
        torch.device("cpu"),
    )
    naive_dp_sgd_step(reference, x, y, 0.3, 0.7, 0.5, torch.Generator().manual_seed(2))
    for a, b in zip(model.state_dict().values(), reference.state_dict().values(), strict=True):
        assert torch.allclose(a, b, atol=1e-5)
    assert not hasattr(model, "_forward_hooks") or not model._forward_hooks  # Opacus hooks removed
    for p in model.parameters():
        assert p.grad is None and not hasattr(p, "grad_sample") or p.grad_sample is None


def test_same_generators_same_model_and_noise_changes_it() -> None:
    x, y = torch.randn(40, 1, 8, 8), torch.randint(0, 10, (40,))
    procedure = LocalTraining(lr=0.1, batch_size=8, local_epochs=1)

    def train(noise_seed: int) -> list[torch.Tensor]:
        torch.manual_seed(0)
        model = mlp((1, 8, 8), 10)
        DPSGD(1.0, 1.0).train(
            model,
            x,
            y,
            procedure,
            torch.Generator().manual_seed(0),
            torch.Generator().manual_seed(noise_seed),
            torch.device("cpu"),
        )
        return [t.clone() for t in model.state_dict().values()]

    first, again, other = train(1), train(1), train(2)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))


def test_accounting_charges_the_smallest_partition_every_step() -> None:
    dp = DPSGD(max_grad_norm=1.0, noise_multiplier=1.0, delta=1e-3)
    dp.check(Setting(20, 5, 64, mlp((1, 8, 8), 10), LocalTraining(batch_size=16, local_epochs=2)))
    assert dp._release is not None
    assert (dp._release.sample_rate, dp._release.steps_per_round) == (16 / 64, 2 * 4)


def test_batchnorm_models_and_large_delta_are_refused() -> None:
    procedure = LocalTraining(batch_size=16)
    with pytest.raises(ValueError, match="privacy=dpsgd needs an Opacus-compatible model"):
        DPSGD().check(Setting(20, 5, 64, resnet8((3, 32, 32), 10, norm="batch"), procedure))
    with pytest.raises(ValueError, match=r"must be < 1/64"):
        DPSGD(delta=0.05).check(Setting(20, 5, 64, mlp((1, 8, 8), 10), procedure))
