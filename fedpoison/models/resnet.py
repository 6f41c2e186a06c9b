"""ResNet-8 for 32×32 images: the CIFAR ResNet of He et al. 2016 (§4.2) with n = 1.

The CIFAR family has 6n + 2 layers: a 3×3 conv with 16 filters, three stages of n basic
blocks with 16, 32 and 64 filters (stages 2 and 3 start with stride 2), global average
pooling and a linear layer; n = 1 gives 8 layers. Shortcuts that change shape are 1×1
stride-2 convolutions (the paper's option B; its CIFAR runs used zero-padding, option A).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from fedpoison.models.cnns import check_shape
from fedpoison.models.registry import MODELS

NORMS: dict[str, Callable[[int], nn.Module]] = {
    "batch": nn.BatchNorm2d,
    "group": lambda channels: nn.GroupNorm(2, channels),
    "none": lambda channels: nn.Identity(),
}


class BasicBlock(nn.Module):
    """conv 3×3 → norm → ReLU → conv 3×3 → norm, plus the shortcut, then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int, norm: str) -> None:
        super().__init__()
        make_norm = NORMS[norm]
        self.body = nn.Sequential(
            nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
            make_norm(c_out),
            nn.ReLU(),
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
            make_norm(c_out),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), make_norm(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


@MODELS.register("resnet8")
def resnet8(
    input_shape: tuple[int, int, int], num_classes: int, width: int = 16, norm: str = "group"
) -> nn.Module:
    """ResNet-8 with stage widths ``width``, ``2·width``, ``4·width`` (16/32/64 in the paper).

    ``norm``: ``"group"`` (default; GroupNorm with 2 groups, which Hsieh et al. 2020 recommend
    for non-IID federated training because it keeps no running statistics), ``"batch"``
    (the paper's BatchNorm; its running statistics are buffers, not parameters) or
    ``"none"``. Designed for ``(3, 32, 32)``; accepts any ``(C, H, W)`` with ``H, W ≥ 4``.
    78,042 parameters with the defaults and 10 classes.
    """
    if norm not in NORMS:
        raise ValueError(f"model.norm must be one of {sorted(NORMS)}, got {norm!r}")
    c, _, _ = check_shape(
        "resnet8",
        input_shape,
        lambda c, h, w: min(h, w) >= 4,
        "(C, H, W) with H, W ≥ 4, e.g. (3, 32, 32)",
    )
    make_norm = NORMS[norm]
    return nn.Sequential(
        nn.Conv2d(c, width, 3, padding=1, bias=False),
        make_norm(width),
        nn.ReLU(),
        BasicBlock(width, width, 1, norm),
        BasicBlock(width, 2 * width, 2, norm),
        BasicBlock(2 * width, 4 * width, 2, norm),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * width, num_classes),
    )
