"""Trigger geometry shared by the backdoors: patches, their masks, stamping and blending.

Convention: images are float32 ``(N, C, H, W)`` in the dataset's space (``[0, 1]`` pixels
unless the dataset config standardises them); a trigger's values are given in that same
space (``1.0`` is white only for ``[0, 1]`` data). A patch is ``(row, col, height, width)``
of a rectangle; every trigger acts on all channels alike, so 1- and 3-channel images work
the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Patch = tuple[int, int, int, int]
"""``(row, col, height, width)`` of a rectangle of pixels."""


def fit_patch(patch: Patch, height: int, width: int, who: str) -> Patch:
    """``patch`` itself when it lies inside ``height × width`` images, else ``ValueError``."""
    row, col, h, w = patch
    if not (0 <= row <= height - h and 0 <= col <= width - w):
        raise ValueError(
            f"{who}: a {h}×{w} trigger at {(row, col)} does not fit {height}×{width} images"
        )
    return patch


def patch_mask(patches: Sequence[Patch], height: int, width: int) -> torch.Tensor:
    """Boolean ``(H, W)`` mask that is true on the union of ``patches``."""
    mask = torch.zeros(height, width, dtype=torch.bool)
    for row, col, h, w in patches:
        mask[row : row + h, col : col + w] = True
    return mask


def stamp(x: torch.Tensor, mask: torch.Tensor, pattern: torch.Tensor | float) -> torch.Tensor:
    """``x' = x ⊙ (1 − m) + p ⊙ m``: a copy of ``x`` with ``pattern`` where ``mask`` is true.

    ``mask`` is ``(H, W)``; ``pattern`` a number or a tensor broadcasting to ``(C, H, W)``
    (BadNets, DBA, A3FL).
    """
    pattern = torch.as_tensor(pattern, dtype=x.dtype, device=x.device)
    return torch.where(mask.to(x.device), pattern, x)


def blend(x: torch.Tensor, key: torch.Tensor, alpha: float) -> torch.Tensor:
    """``x' = (1 − α)·x + α·k`` (Chen et al. 2017, REFERENCES D31); ``key`` broadcasts to
    ``(C, H, W)``. The blend is affine, so on standardised data it equals standardising the
    pixel-space blend when ``key`` is given in the standardised space too."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"blend: alpha must be in [0, 1], got {alpha}")
    return torch.lerp(x, key.to(dtype=x.dtype, device=x.device).expand_as(x), alpha)


def random_pattern(shape: Sequence[int], low: float, high: float, seed: int) -> torch.Tensor:
    """A uniform-noise pattern in ``[low, high)`` of ``shape``, drawn from its own seeded
    generator (the same pattern in every client, round and process for one ``seed``)."""
    if not low < high:
        raise ValueError(f"trigger pattern: need low < high, got [{low}, {high})")
    generator = torch.Generator().manual_seed(int(seed))
    return low + (high - low) * torch.rand(tuple(shape), generator=generator)
