"""Reference CNNs of the poisoning literature: FLTrust's MNIST CNN, LeNet-5 and a CIFAR CNN.

Builders take ``(input_shape, num_classes, **params)`` with ``input_shape = (C, H, W)`` and
raise ``ValueError`` naming the shape they expect when given one they cannot handle.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from fedpoison.models.registry import MODELS


def check_shape(
    model: str, input_shape: tuple[int, ...], ok: Callable[[int, int, int], bool], expected: str
) -> tuple[int, int, int]:
    """``(C, H, W)`` if ``input_shape`` has three positive entries and passes ``ok``;
    else ``ValueError``."""
    shape = tuple(int(s) for s in input_shape)
    if len(shape) != 3 or min(shape) < 1 or not ok(*shape):
        raise ValueError(f"model {model!r} expects input_shape {expected}, got {shape}")
    return shape


def _conv_pool_stack(c: int, widths: tuple[int, int]) -> list[nn.Module]:
    """conv(3×3, no padding) → ReLU → maxpool(2) for each width, as in the MXNet code."""
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Conv2d(c, width, 3), nn.ReLU(), nn.MaxPool2d(2)]
        c = width
    return layers


def _after_two_blocks(size: int) -> int:
    return ((size - 2) // 2 - 2) // 2


@MODELS.register("fltrust_cnn")
def fltrust_cnn(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The CNN of FLTrust (Cao et al. 2021, MNIST/Fashion-MNIST) and Fang et al. 2020.

    conv 30 (3×3) → ReLU → maxpool 2 → conv 50 (3×3) → ReLU → maxpool 2 → flatten →
    fc 100 → ReLU → fc ``num_classes``. Kernels are 3×3 with stride 1 and **no padding**, pools
    2×2 stride 2, as in the official MXNet ``get_cnn`` (``gluon.nn.Conv2D(channels=30,
    kernel_size=3)``, Gluon's default padding is 0). On ``(1, 28, 28)``: 28 → 26 → 13 → 11 → 5,
    so the flattened size is 50·5·5 = 1,250 and the model has **139,960** parameters for 10
    classes. Accepts any ``(C, H, W)`` with ``H, W ≥ 10``.
    """
    c, h, w = check_shape(
        "fltrust_cnn",
        input_shape,
        lambda c, h, w: min(h, w) >= 10,
        "(C, H, W) with H, W ≥ 10, e.g. (1, 28, 28)",
    )
    return nn.Sequential(
        *_conv_pool_stack(c, (30, 50)),
        nn.Flatten(),
        nn.Linear(50 * _after_two_blocks(h) * _after_two_blocks(w), 100),
        nn.ReLU(),
        nn.Linear(100, num_classes),
    )


@MODELS.register("lenet")
def lenet(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """LeNet-5-style CNN (LeCun et al. 1998) with ReLU and max pooling instead of tanh/subsampling.

    conv 6 (5×5) → ReLU → maxpool 2 → conv 16 (5×5) → ReLU → maxpool 2 → fc 120 → ReLU →
    fc 84 → ReLU → fc ``num_classes``. LeNet-5 reads 32×32 images; a 28×28 input (MNIST,
    Fashion-MNIST) is zero-padded by 2 in the first conv, which is the same thing. Expects
    ``(C, 28, 28)`` or ``(C, 32, 32)``; 61,706 parameters on ``(1, 28, 28)`` with 10 classes.
    """
    c, h, w = check_shape(
        "lenet", input_shape, lambda c, h, w: h == w and h in (28, 32), "(C, 28, 28) or (C, 32, 32)"
    )
    return nn.Sequential(
        nn.Conv2d(c, 6, 5, padding=(32 - h) // 2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, num_classes),
    )


@MODELS.register("cifar_cnn")
def cifar_cnn(input_shape: tuple[int, int, int], num_classes: int, hidden: int = 512) -> nn.Module:
    """Small CIFAR CNN of the FLTrust code lineage (MXNet ``get_cnn_cifar``).

    conv 32 (3×3) → ReLU → maxpool 2 → conv 64 (3×3) → ReLU → maxpool 2 → flatten →
    fc ``hidden`` → ReLU → fc ``num_classes``; 3×3 kernels without padding as in
    :func:`fltrust_cnn`. On ``(3, 32, 32)``: 32 → 30 → 15 → 13 → 6, flattened 64·6·6 = 2,304;
    1,204,682 parameters with ``hidden = 512`` and 10 classes. Accepts any ``(C, H, W)`` with
    ``H, W ≥ 10``.
    """
    c, h, w = check_shape(
        "cifar_cnn",
        input_shape,
        lambda c, h, w: min(h, w) >= 10,
        "(C, H, W) with H, W ≥ 10, e.g. (3, 32, 32)",
    )
    return nn.Sequential(
        *_conv_pool_stack(c, (32, 64)),
        nn.Flatten(),
        nn.Linear(64 * _after_two_blocks(h) * _after_two_blocks(w), hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )
