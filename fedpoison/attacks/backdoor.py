"""BadNets pixel-pattern backdoor (Gu et al. 2017, "BadNets"; as used by Bagdasaryan et al.
2020)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch

from fedpoison.attacks.base import DATA_ATTACKS, DataAttack
from fedpoison.attacks.label_flip import poison_indices


@DATA_ATTACKS.register("backdoor")
class Backdoor(DataAttack):
    """Stamp a ``size × size`` square of ``value`` on every channel and relabel to ``target``.

    Args:
        size: side of the square trigger in pixels.
        position: ``"bottom_right"``, ``"top_left"``, or ``(row, col)`` of the square's top-left
            pixel.
        value: trigger pixel value (1.0 = the maximum of ``[0, 1]``-scaled images).
        target: the label triggered inputs should receive.
        poison_fraction: fraction of the client's samples (``⌊fraction·N⌋``, drawn with the
            passed generator) that get the trigger and the target label.
    """

    paper: ClassVar[str] = "Gu et al. 2017, BadNets"

    def __init__(
        self,
        size: int = 3,
        position: str | Sequence[int] = "bottom_right",
        value: float = 1.0,
        target: int = 0,
        poison_fraction: float = 0.5,
    ) -> None:
        if size < 1:
            raise ValueError(f"backdoor: size must be ≥ 1, got {size}")
        if not 0.0 <= poison_fraction <= 1.0:
            raise ValueError(f"backdoor: poison_fraction must be in [0, 1], got {poison_fraction}")
        if isinstance(position, str) and position not in ("bottom_right", "top_left"):
            raise ValueError(
                f"backdoor: position must be bottom_right, top_left or (row, col); got {position!r}"
            )
        self.position: str | tuple[int, int] = (
            position if isinstance(position, str) else (int(position[0]), int(position[1]))
        )
        self.size = int(size)
        self.value = float(value)
        self.target = int(target)
        self.poison_fraction = float(poison_fraction)

    def _corner(self, height: int, width: int) -> tuple[int, int]:
        if isinstance(self.position, tuple):
            row, col = self.position
        elif self.position == "top_left":
            row, col = 0, 0
        else:
            row, col = height - self.size, width - self.size
        if not (0 <= row <= height - self.size and 0 <= col <= width - self.size):
            raise ValueError(
                f"backdoor: a {self.size}×{self.size} trigger at {(row, col)} does not fit "
                f"{height}×{width} images"
            )
        return row, col

    def apply_trigger(self, x: torch.Tensor) -> torch.Tensor:
        """A copy of the ``(N, C, H, W)`` batch ``x`` with the trigger stamped on every image."""
        row, col = self._corner(x.shape[-2], x.shape[-1])
        out = x.clone()
        out[..., row : row + self.size, col : col + self.size] = self.value
        return out

    def poison(
        self, x: torch.Tensor, y: torch.Tensor, num_classes: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= self.target < num_classes:
            raise ValueError(f"backdoor: target {self.target} is outside [0, {num_classes - 1}]")
        chosen = poison_indices(
            torch.arange(y.numel(), device=y.device), self.poison_fraction, generator
        )
        x_new, y_new = x.clone(), y.clone()
        x_new[chosen] = self.apply_trigger(x[chosen])
        y_new[chosen] = self.target
        return x_new, y_new

    def success_set(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Triggered test inputs whose true label is not ``target``, all labelled ``target``."""
        keep = y != self.target
        return self.apply_trigger(x[keep]), torch.full_like(y[keep], self.target)
