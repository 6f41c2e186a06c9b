"""Small tensor helpers shared by the update attacks.

Every helper is pure and keeps the dtype and device of the tensor it is given. Random draws
happen on the generator's device (a ``torch.Generator`` can only fill tensors on its own
device) and are then moved next to the updates, so a CPU adversary generator works with
CUDA updates.
"""

from __future__ import annotations

import torch


def repeat_rows(vector: torch.Tensor, m: int) -> torch.Tensor:
    """``m`` independent copies of ``vector`` ``(d,)`` stacked as ``(m, d)``."""
    return vector.unsqueeze(0).repeat(m, 1)


def coordinate_std(updates: torch.Tensor, unbiased: bool) -> torch.Tensor:
    """Coordinate-wise std ``(d,)``; population std when ``unbiased`` is false or only one
    row is known (the unbiased estimate is undefined there)."""
    correction = 1 if unbiased and updates.shape[0] > 1 else 0
    return updates.std(dim=0, correction=correction)


def direction(updates: torch.Tensor) -> torch.Tensor:
    """Fang et al.'s ``s``: the sign of the mean update, i.e. the direction in which each
    parameter would move without the attack (delta convention: ``w ← w + η·Δ``)."""
    return torch.sign(updates.mean(dim=0))


def uniform(shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """``U[0, 1)`` samples with ``like``'s dtype and device, drawn from ``generator``."""
    draw = torch.rand(shape, generator=generator, device=generator.device, dtype=like.dtype)
    return draw.to(like.device)


def normal(shape: tuple[int, ...], generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """Standard-normal samples with ``like``'s dtype and device, drawn from ``generator``."""
    draw = torch.randn(shape, generator=generator, device=generator.device, dtype=like.dtype)
    return draw.to(like.device)


def pairwise_sq_dists(updates: torch.Tensor) -> torch.Tensor:
    """All squared L2 distances ``(k, k)`` from one Gram matrix, in float64 (zero diagonal)."""
    x = updates.to(torch.float64)
    sq = (x * x).sum(dim=1)
    gram = x @ x.T
    dists = (sq[:, None] + sq[None, :] - 2.0 * gram).clamp_min(0.0)
    return dists.fill_diagonal_(0.0)
