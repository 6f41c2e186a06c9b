"""Reference CNNs and ResNet-8: output shapes, documented parameter counts, shape errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fedpoison.models import MODELS, build_model
from fedpoison.models.resnet import resnet8

SUPPORTED = [
    ("fltrust_cnn", (1, 28, 28)),
    ("fltrust_cnn", (3, 32, 32)),
    ("fltrust_cnn", (1, 10, 10)),
    ("lenet", (1, 28, 28)),
    ("lenet", (3, 32, 32)),
    ("cifar_cnn", (3, 32, 32)),
    ("cifar_cnn", (1, 28, 28)),
    ("resnet8", (3, 32, 32)),
    ("resnet8", (1, 28, 28)),
    ("resnet8", (3, 4, 4)),
]
PARAMETERS = {  # documented counts, 10 classes
    ("fltrust_cnn", (1, 28, 28)): 139_960,
    ("lenet", (1, 28, 28)): 61_706,
    ("cifar_cnn", (3, 32, 32)): 1_204_682,
    ("resnet8", (3, 32, 32)): 78_042,
}
UNSUPPORTED = [
    ("fltrust_cnn", (1, 9, 28), r"H, W ≥ 10"),
    ("lenet", (1, 30, 30), r"\(C, 28, 28\) or \(C, 32, 32\)"),
    ("lenet", (1, 28, 32), r"\(C, 28, 28\) or \(C, 32, 32\)"),
    ("cifar_cnn", (3, 8, 8), r"H, W ≥ 10"),
    ("resnet8", (3, 3, 3), r"H, W ≥ 4"),
    ("resnet8", (32, 32), r"expects input_shape"),
    ("fltrust_cnn", (0, 28, 28), r"expects input_shape"),
]


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("name", "shape"), SUPPORTED)
@pytest.mark.parametrize("num_classes", [10, 3])
def test_output_shape_and_backward(
    name: str, shape: tuple[int, int, int], num_classes: int
) -> None:
    model = MODELS.get(name)(shape, num_classes)
    out = model(torch.randn(4, *shape))
    assert out.shape == (4, num_classes)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize(("key", "count"), PARAMETERS.items(), ids=lambda v: str(v))
def test_documented_parameter_counts(key: tuple[str, tuple[int, int, int]], count: int) -> None:
    name, shape = key
    assert _count(MODELS.get(name)(shape, 10)) == count


def test_fltrust_cnn_layers_match_the_mxnet_code() -> None:
    model = MODELS.get("fltrust_cnn")((1, 28, 28), 10)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.padding, c.stride) for c in convs] == [
        (30, (3, 3), (0, 0), (1, 1)),
        (50, (3, 3), (0, 0), (1, 1)),
    ]
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride) for p in pools] == [(2, 2), (2, 2)]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(1250, 100), (100, 10)]


@pytest.mark.parametrize(("name", "shape", "match"), UNSUPPORTED)
def test_unsupported_shapes_name_the_expected_one(
    name: str, shape: tuple[int, ...], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        MODELS.get(name)(shape, 10)


@pytest.mark.parametrize(
    ("norm", "count"), [("group", 78_042), ("batch", 78_042), ("none", 77_370)]
)
def test_resnet8_norms(norm: str, count: int) -> None:
    model = resnet8((3, 32, 32), 10, norm=norm)
    assert _count(model) == count
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_resnet8_rejects_unknown_norm() -> None:
    with pytest.raises(ValueError, match="model.norm must be one of"):
        resnet8((3, 32, 32), 10, norm="layer")


@pytest.mark.parametrize("name", ["fltrust_cnn", "lenet", "cifar_cnn", "resnet8"])
def test_build_model_is_seeded(name: str) -> None:
    builder, shape = MODELS.get(name), (3, 32, 32)
    a, b, c = (build_model(builder, shape, 10, seed=s) for s in (1, 1, 2))
    assert all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    assert not all(
        torch.equal(x, y)
        for x, y in zip(a.state_dict().values(), c.state_dict().values(), strict=True)
    )
