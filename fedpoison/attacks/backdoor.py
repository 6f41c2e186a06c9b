"""BadNets pixel-pattern backdoor (Gu et al. 2017, "BadNets"; as used by Bagdasaryan et al.
2020)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch

from fedpoison.attacks.base import DATA_ATTACKS, DataAttack
from fedpoison.attacks.label_flip import poison_with_trigger, triggered_success_set
from fedpoison.attacks.triggers import random_pattern

POSITIONS = ("bottom_right", "top_left", "top_right", "bottom_left", "random")
PATTERNS = ("solid", "checkerboard", "random")


@DATA_ATTACKS.register("backdoor")
class Backdoor(DataAttack):
    """Stamp a ``size × size`` square trigger on every image and relabel to ``target``.

    Args:
        size: side of the square trigger in pixels.
        position: ``"bottom_right"``, ``"top_left"``, ``"top_right"``, ``"bottom_left"``,
            ``"random"`` (a corner drawn once from ``pattern_seed``, the same for every client
            and the success set), or ``(row, col)`` of the square's top-left pixel.
        value: trigger pixel value in the data's space (1.0 = the maximum of
            ``[0, 1]``-scaled images).
        target: the label triggered inputs should receive.
        poison_fraction: fraction of the client's samples (``⌊fraction·N⌋``, drawn with the
            passed generator) that get the trigger and the target label.
        pattern: ``"solid"`` (every trigger pixel ``value``, on every channel: BadNets'
            white square), ``"checkerboard"`` (``value`` and ``low`` alternating, ``value``
            at the square's top-left) or ``"random"`` (each pixel of each channel uniform in
            ``[low, value)``, drawn once from ``pattern_seed``: a colour pattern on 3-channel
            images).
        low: the other value of the checkerboard and random patterns.
        pattern_seed: seed of the random pattern and of the random position (independent of
            the run seed, so every client and the server build the same trigger).

    With the defaults the trigger is the white 3×3 square of the original ``backdoor``.
    """

    paper: ClassVar[str] = "Gu et al. 2017, BadNets"

    def __init__(
        self,
        size: int = 3,
        position: str | Sequence[int] = "bottom_right",
        value: float = 1.0,
        target: int = 0,
        poison_fraction: float = 0.5,
        pattern: str = "solid",
        low: float = 0.0,
        pattern_seed: int = 0,
    ) -> None:
        if size < 1:
            raise ValueError(f"backdoor: size must be ≥ 1, got {size}")
        if not 0.0 <= poison_fraction <= 1.0:
            raise ValueError(f"backdoor: poison_fraction must be in [0, 1], got {poison_fraction}")
        if isinstance(position, str) and position not in POSITIONS:
            raise ValueError(
                f"backdoor: position must be one of {', '.join(POSITIONS)} or (row, col); "
                f"got {position!r}"
            )
        if pattern not in PATTERNS:
            raise ValueError(
                f"backdoor: pattern must be one of {', '.join(PATTERNS)}, got {pattern!r}"
            )
        self.position: str | tuple[int, int] = (
            position if isinstance(position, str) else (int(position[0]), int(position[1]))
        )
        self.size = int(size)
        self.value = float(value)
        self.target = int(target)
        self.poison_fraction = float(poison_fraction)
        self.pattern = pattern
        self.low = float(low)
        self.pattern_seed = int(pattern_seed)

    def _corner(self, height: int, width: int) -> tuple[int, int]:
        if isinstance(self.position, tuple):
            row, col = self.position
        elif self.position == "random":
            generator = torch.Generator().manual_seed(self.pattern_seed)
            row = int(torch.randint(max(height - self.size + 1, 1), (1,), generator=generator))
            col = int(torch.randint(max(width - self.size + 1, 1), (1,), generator=generator))
        else:
            row = 0 if self.position.startswith("top") else height - self.size
            col = 0 if self.position.endswith("left") else width - self.size
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
        square = out[..., row : row + self.size, col : col + self.size]
        if self.pattern == "solid":
            square[...] = self.value
        else:
            square[...] = self.square(x.shape[-3]).to(dtype=x.dtype, device=x.device)
        return out

    def square(self, channels: int) -> torch.Tensor:
        """The ``(channels, size, size)`` trigger values (``pattern``, ``value``, ``low``)."""
        shape = (channels, self.size, self.size)
        if self.pattern == "random":
            return random_pattern(shape, self.low, self.value, self.pattern_seed)
        out = torch.full(shape, self.value)
        if self.pattern == "checkerboard":
            rows, cols = torch.meshgrid(
                torch.arange(self.size), torch.arange(self.size), indexing="ij"
            )
            out[:, (rows + cols) % 2 == 1] = self.low
        return out

    def poison(
        self, x: torch.Tensor, y: torch.Tensor, num_classes: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return poison_with_trigger(
            "backdoor",
            x,
            y,
            self.target,
            num_classes,
            self.poison_fraction,
            self.apply_trigger,
            generator,
        )

    def success_set(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Triggered test inputs whose true label is not ``target``, all labelled ``target``."""
        return triggered_success_set(x, y, self.target, self.apply_trigger)
