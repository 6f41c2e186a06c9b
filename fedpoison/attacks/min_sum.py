"""Min-Sum attack (Shejwalkar & Houmansadr 2021, NDSS, §IV-C, Eq. (7); docs/conventions.md §C21)."""

from __future__ import annotations

from typing import Literal

import torch

from fedpoison.attacks.base import UPDATE_ATTACKS, AdversaryView, MaliciousReplies
from fedpoison.attacks.common import pairwise_sq_dists, repeat_rows
from fedpoison.attacks.min_max import MinMax
from fedpoison.attacks.shejwalkar import (
    Perturbation,
    distance_profile,
    halving_search,
    perturbation_vector,
)
from fedpoison.attacks.threat import Knowledge

Bound = Literal["max", "min"]


def min_sum_gamma(
    reference: torch.Tensor, perturbation: torch.Tensor, bound: Bound = "max"
) -> float:
    """Largest ``γ`` (official halving search) with
    ``Σ_i ‖Δ_m − Δ_i‖² ≤ max_i Σ_j ‖Δ_i − Δ_j‖²`` (``bound="max"``: paper, FLPoison,
    FoundationFL) or ``≤ min_i Σ_j ‖Δ_i − Δ_j‖²`` (``bound="min"``: official notebook's
    ``min_score``, stricter); ``i, j`` over the rows of ``reference``, squared L2 distances."""
    scores = pairwise_sq_dists(reference).sum(dim=1)
    if bound == "max":
        limit = float(scores.max())
    elif bound == "min":
        limit = float(scores.min())
    else:
        raise ValueError(f"min_sum: bound must be 'max' or 'min', got {bound!r}")
    dists = distance_profile(reference, reference.mean(dim=0), perturbation)
    return halving_search(lambda gamma: float(dists(gamma).sum()) <= limit)


def min_sum_attack(
    reference: torch.Tensor,
    num_malicious: int,
    perturbation: Perturbation = "unit_vec",
    bound: Bound = "max",
) -> torch.Tensor:
    """``m`` copies of ``Δ_b − γ*·∇_p`` with ``γ*`` from :func:`min_sum_gamma`; ``reference``
    and ``∇_p`` as in :func:`~fedpoison.attacks.min_max.min_max_attack`."""
    p = perturbation_vector(reference, perturbation)
    gamma = min_sum_gamma(reference, p, bound)
    return repeat_rows(reference.mean(dim=0) - gamma * p, num_malicious)


@UPDATE_ATTACKS.register("min_sum")
class MinSum(MinMax):
    """Min-Sum: the malicious update's summed squared distance to the benign updates is no
    larger than that of the most outlying (``bound="max"``) benign update.

    Args:
        perturbation, knowledge: as :class:`~fedpoison.attacks.min_max.MinMax`.
        bound: ``max`` (paper, default) or ``min`` (official notebook code).
    """

    def __init__(
        self,
        perturbation: Perturbation = "unit_vec",
        knowledge: Knowledge = "all",
        bound: Bound = "max",
    ) -> None:
        super().__init__(perturbation, knowledge)
        if bound not in ("max", "min"):
            raise ValueError(f"min_sum: bound must be 'max' or 'min', got {bound!r}")
        self.bound: Bound = bound

    def craft(self, view: AdversaryView) -> MaliciousReplies:
        rows = min_sum_attack(
            self.reference(view), view.num_malicious, self.perturbation, self.bound
        )
        return MaliciousReplies(rows)
