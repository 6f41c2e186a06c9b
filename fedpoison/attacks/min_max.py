"""Min-Max attack (Shejwalkar & Houmansadr 2021, NDSS, §IV-C, Eq. (6); docs/conventions.md §C21)."""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.attacks.base import UPDATE_ATTACKS, AdversaryView, MaliciousReplies, UpdateAttack
from fedpoison.attacks.common import pairwise_sq_dists, repeat_rows
from fedpoison.attacks.shejwalkar import (
    PERTURBATIONS,
    Perturbation,
    distance_profile,
    halving_search,
    perturbation_vector,
)
from fedpoison.attacks.threat import Knowledge


def min_max_gamma(reference: torch.Tensor, perturbation: torch.Tensor) -> float:
    """Largest ``γ`` (official halving search) with
    ``max_{i} ‖Δ_m − Δ_i‖² ≤ max_{i,j} ‖Δ_i − Δ_j‖²``, ``Δ_m = mean(reference) − γ·perturbation``,
    ``i, j`` over the rows of ``reference`` (squared L2 distances, as the official code)."""
    bound = float(pairwise_sq_dists(reference).max())
    dists = distance_profile(reference, reference.mean(dim=0), perturbation)
    return halving_search(lambda gamma: float(dists(gamma).max()) <= bound)


def min_max_attack(
    reference: torch.Tensor, num_malicious: int, perturbation: Perturbation = "unit_vec"
) -> torch.Tensor:
    """``m`` copies of ``Δ_b − γ*·∇_p`` with ``γ*`` from :func:`min_max_gamma`.

    ``reference`` is the set the attacker computes ``Δ_b`` (its mean), ``∇_p`` and the distance
    bound on: the benign updates (full knowledge, paper) or its own honest updates (partial
    knowledge, "unknown benign gradients" notebooks). ``∇_p`` in delta form: see
    :func:`~fedpoison.attacks.shejwalkar.perturbation_vector`.

    Example: the widest benign pair, (1, 0)–(2, 2) or (0, 1)–(2, 2), is √5 apart; the
    malicious update moves from the mean (1, 1) along −(1, 1)/√2 until its distance to
    (2, 2) reaches √5, i.e. to ``a = 2 − √2.5 ≈ 0.4189`` in both coordinates.

        >>> import torch
        >>> from fedpoison.attacks import min_max_attack
        >>> ref = torch.tensor([[1, 0], [0, 1], [1, 1], [2, 2]], dtype=torch.float64)
        >>> [[round(v, 4) for v in row] for row in min_max_attack(ref, 2).tolist()]
        [[0.4189, 0.4189], [0.4189, 0.4189]]
    """
    p = perturbation_vector(reference, perturbation)
    gamma = min_max_gamma(reference, p)
    return repeat_rows(reference.mean(dim=0) - gamma * p, num_malicious)


@UPDATE_ATTACKS.register("min_max")
class MinMax(UpdateAttack):
    """Min-Max: the malicious update is no farther from any benign update than the two most
    distant benign updates are from each other.

    Args:
        perturbation: ``unit_vec`` (paper default) | ``std`` (official CIFAR runs) | ``sign``.
        knowledge: ``all`` = statistics from the benign updates (full knowledge, paper);
            ``own`` = from the attackers' own honest updates (partial-knowledge variant).
    """

    paper: ClassVar[str] = "Shejwalkar & Houmansadr 2021, Manipulating the Byzantine (NDSS)"
    knowledge: ClassVar[Knowledge] = "own"
    needs_defense: ClassVar[bool] = False

    def __init__(
        self, perturbation: Perturbation = "unit_vec", knowledge: Knowledge = "all"
    ) -> None:
        if perturbation not in PERTURBATIONS:
            raise ValueError(f"{self.name}: perturbation must be one of {PERTURBATIONS}")
        if knowledge not in ("own", "all"):
            raise ValueError(f"{self.name}: knowledge must be 'own' or 'all', got {knowledge!r}")
        self.perturbation: Perturbation = perturbation
        self.source: Knowledge = knowledge

    def required_knowledge(self) -> Knowledge:
        return self.source

    def reads_own_updates(self) -> bool:
        """Only ``knowledge=own`` takes the statistics from the attackers' own updates."""
        return self.source == "own"

    def reference(self, view: AdversaryView) -> torch.Tensor:
        """The rows the statistics come from (benign for ``all``, own for ``own``)."""
        if self.source == "own":
            return view.own
        if view.benign is None:
            raise ValueError(f"{self.name} needs the benign updates; set threat.knowledge=all")
        return view.benign

    def craft(self, view: AdversaryView) -> MaliciousReplies:
        rows = min_max_attack(self.reference(view), view.num_malicious, self.perturbation)
        return MaliciousReplies(rows)
