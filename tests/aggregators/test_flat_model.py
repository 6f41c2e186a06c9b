"""FlatModel: the module evaluated at a flat ``state_dict`` vector, its output layer, and the
linear models the rule tester hands to rules that need a model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedpoison.aggregators.flat_model import FlatModel, linear_model


def test_logits_equal_the_module_with_those_weights() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    model = FlatModel(net, (1, 4, 4))
    flat = torch.rand(model.dim) + 0.1  # positive, so BatchNorm's running variances are valid
    other = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    state = {}
    for name, shape, (a, b) in zip(model.names, model.shapes, model.offsets(), strict=True):
        state[name] = flat[a:b].reshape(shape).to(other.state_dict()[name].dtype)
    other.load_state_dict(state)
    other.eval()
    x = torch.randn(5, 1, 4, 4)
    torch.testing.assert_close(model.logits(flat, x), other(x))
    assert net.training  # the module's mode is restored


def test_output_layer_and_vector() -> None:
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    model = FlatModel(net, (4,))
    w, shape, b = model.output_layer()
    assert shape == (3, 6) and (w.start, w.stop, b.start, b.stop) == (30, 48, 48, 51)
    torch.testing.assert_close(model.vector()[w], net[2].weight.detach().reshape(-1))
    with pytest.raises(ValueError, match="d=51"):
        model.logits(torch.zeros(50), torch.zeros(1, 4))


@pytest.mark.parametrize("d", range(1, 13))
def test_linear_models_have_exactly_d_parameters(d: int) -> None:
    model = linear_model(d)
    assert model.dim == d
    out = model.logits(torch.randn(d), torch.rand(2, *model.input_shape))
    assert out.shape == (2, model.shapes[0][0])
