"""Shared pieces of Shejwalkar & Houmansadr 2021 (NDSS), §IV: perturbations and the γ search.

Used by :mod:`~fedpoison.attacks.min_max`, :mod:`~fedpoison.attacks.min_sum` and
:mod:`~fedpoison.attacks.adaptive`. All three craft ``∇_m = ∇_b − γ·∇_p`` and differ only in
the condition that accepts a ``γ``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

from fedpoison.attacks.common import coordinate_std

Perturbation = Literal["unit_vec", "std", "sign"]
PERTURBATIONS: tuple[Perturbation, ...] = ("unit_vec", "std", "sign")


def perturbation_vector(reference: torch.Tensor, kind: Perturbation) -> torch.Tensor:
    """``∇_p`` ``(d,)`` in delta form, such that the malicious update is ``Δ_b − γ·∇_p``.

    The paper (and official code) work on gradients: ``∇_m = ∇_b − γ·p`` with ``p`` one of
    ``∇_b/‖∇_b‖``, ``sign(∇_b)``, ``std(∇)``. With deltas ``Δ ≈ −lr·g`` the odd perturbations
    keep their form (``unit_vec``: ``Δ_b/‖Δ_b‖``; ``sign``: ``sign(Δ_b)``), while the even one
    flips: ``std`` becomes ``−std(Δ)`` so that ``Δ_m = Δ_b + γ·std(Δ)``. ``Δ_b`` is the mean of
    ``reference``; the std is the unbiased coordinate-wise std of ``reference`` (``torch.std``
    as in the official notebooks). A zero ``Δ_b`` gives a zero ``unit_vec`` perturbation.
    """
    center = reference.mean(dim=0)
    if kind == "unit_vec":
        norm = torch.linalg.vector_norm(center)
        return center / norm if norm > 0 else torch.zeros_like(center)
    if kind == "sign":
        return torch.sign(center)
    if kind == "std":
        return -coordinate_std(reference, unbiased=True)
    raise ValueError(f"perturbation must be one of {', '.join(PERTURBATIONS)}; got {kind!r}")


def halving_search(
    condition: Callable[[float], bool],
    gamma: float = 10.0,
    step: float = 10.0,
    tol: float = 1e-5,
) -> float:
    """The official γ search of Shejwalkar & Houmansadr (docs/conventions.md §C21), verbatim::

        γ_succ = 0
        while |γ_succ − γ| > tol:
            if condition(γ): γ_succ = γ; γ = γ + step/2
            else:            γ = γ − step/2
            step = step/2
        return γ_succ

    For a condition that holds on ``[0, γ*]`` with ``γ* < gamma + step`` it returns ``γ*``
    to within ``tol``; ``0`` when no tried ``γ`` succeeds.
    """
    gamma_succ = 0.0
    while abs(gamma_succ - gamma) > tol:
        if condition(gamma):
            gamma_succ = gamma
            gamma = gamma + step / 2
        else:
            gamma = gamma - step / 2
        step = step / 2
    return gamma_succ


def distance_profile(
    reference: torch.Tensor, center: torch.Tensor, perturbation: torch.Tensor
) -> Callable[[float], torch.Tensor]:
    """``γ ↦ (‖center − γ·p − Δ_i‖²)_i`` for every row ``Δ_i`` of ``reference``, in float64.

    Expanded once as ``‖c−Δ_i‖² − 2γ⟨c−Δ_i, p⟩ + γ²‖p‖²`` so every γ tried costs ``O(k)``.
    """
    diff = (center - reference).to(torch.float64)
    p = perturbation.to(torch.float64)
    base, cross, pp = (diff * diff).sum(dim=1), diff @ p, p @ p
    return lambda gamma: base - 2.0 * gamma * cross + gamma * gamma * pp
