"""Sign flip, scaling, IPM, Gaussian and num-examples inflation: exact formulas."""

from __future__ import annotations

import pytest
import torch

from fedpoison.attacks import (
    IPM,
    Gaussian,
    NumExamplesInflation,
    Scaling,
    SignFlip,
    gaussian_attack,
    ipm_attack,
    replacement_gamma,
)


def test_sign_flip(make_view) -> None:
    own = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    view = make_view(own, torch.randn(3, 2), knowledge="own")
    assert torch.equal(SignFlip().craft(view).updates, -own)
    assert torch.equal(SignFlip(scale=3.0).craft(view).updates, -3.0 * own)
    assert SignFlip().craft(view).num_examples is None


def test_scaling_gamma_is_n_over_eta(make_view) -> None:
    own, benign = torch.randn(2, 3), torch.randn(8, 3)
    view = make_view(own, benign, knowledge="own", server_lr=0.5)
    assert replacement_gamma(10, 0.5) == 20.0
    assert torch.allclose(Scaling().craft(view).updates, 20.0 * own)
    assert torch.allclose(Scaling(gamma=7.0).craft(view).updates, 7.0 * own)
    with pytest.raises(ValueError, match="server_lr"):
        replacement_gamma(10, 0.0)


def test_ipm_is_minus_eps_benign_mean(make_view) -> None:
    benign = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    own = torch.tensor([[100.0, 100.0]] * 3)
    view = make_view(own, benign)
    out = IPM(epsilon=0.5).craft(view).updates
    assert torch.allclose(out, torch.tensor([[-1.0, -2.0]] * 3))
    assert torch.allclose(ipm_attack(benign, 2), torch.tensor([[-0.2, -0.4]] * 2))
    with pytest.raises(ValueError, match="knowledge=all"):
        IPM().craft(make_view(own, benign, knowledge="own"))


def test_gaussian_blanchard_variance() -> None:
    known = torch.zeros(1, 4000)
    out = gaussian_attack(known, 5, torch.Generator().manual_seed(0), variance=200.0)
    assert out.shape == (5, 4000)
    assert out.mean().abs() < 0.5
    assert out.var().item() == pytest.approx(200.0, rel=0.05)


def test_gaussian_fang_uses_known_statistics() -> None:
    known = torch.tensor([[0.0, 10.0], [2.0, 10.0], [4.0, 10.0]])
    out = gaussian_attack(known, 20000, torch.Generator().manual_seed(1), mode="fang")
    assert torch.allclose(out.mean(0), torch.tensor([2.0, 10.0]), atol=0.05)
    assert torch.allclose(out.std(0), known.std(0, correction=0), atol=0.05)
    assert torch.all(out[:, 1] == 10.0)  # zero spread ⇒ no noise


def test_gaussian_deterministic_per_generator(make_view) -> None:
    own, benign = torch.randn(3, 6), torch.randn(5, 6)
    a = Gaussian().craft(make_view(own, benign, seed=4)).updates
    b = Gaussian().craft(make_view(own, benign, seed=4)).updates
    c = Gaussian().craft(make_view(own, benign, seed=5)).updates
    assert torch.equal(a, b) and not torch.equal(a, c)
    with pytest.raises(ValueError, match="mode"):
        Gaussian(mode="uniform")  # type: ignore[arg-type]


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
