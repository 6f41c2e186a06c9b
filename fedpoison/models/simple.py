"""Logistic regression, a one-hidden-layer MLP and a small two-conv CNN."""

from __future__ import annotations

from math import prod

from torch import nn

from fedpoison.models.registry import MODELS


@MODELS.register("logreg")
def logreg(input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Multinomial logistic regression on flattened pixels."""
    return nn.Sequential(nn.Flatten(), nn.Linear(prod(input_shape), num_classes))


@MODELS.register("mlp")
def mlp(input_shape: tuple[int, int, int], num_classes: int, hidden: int = 64) -> nn.Module:
    """Flatten → Linear(hidden) → ReLU → Linear(num_classes)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(prod(input_shape), hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


@MODELS.register("cnn")
def cnn(input_shape: tuple[int, int, int], num_classes: int, channels: int = 16) -> nn.Module:
    """conv(3×3, c) → ReLU → pool → conv(3×3, 2c) → ReLU → pool → linear; any H, W ≥ 4."""
    c, h, w = input_shape
    return nn.Sequential(
        nn.Conv2d(c, channels, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(channels, 2 * channels, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(2 * channels * (h // 4) * (w // 4), num_classes),
    )
