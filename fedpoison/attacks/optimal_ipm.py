"""Optimal-IPM (ByzFL's ``Optimal_InnerProductManipulation``; Allouah et al., AISTATS 2023,
"Fixing by Mixing"): IPM whose factor τ is found by line search against the deployed defense.

Base attack: ``IPM_τ(H) = −τ·mean(H)`` over the honest updates ``H`` (omniscient,
docs/conventions.md §C4); the map is linear, so gradients and deltas give the same attack
(docs/conventions.md §C20). τ maximises ``J(τ) = ‖Agg(H ∪ {m copies}) − mean(H)‖`` by ByzFL's
search over ``[start, start + delta·(2^(evals−1) − 1)]``
(:mod:`~fedpoison.attacks.line_search`; 20 evaluations from τ = 0 with step 10 and ratio 0.8
by default), ``Agg`` being the server's deployed defense, pre-aggregators then rule, with its
declared ``f``, simulated on a copy as ByzFL does (REFERENCES D28), and ``m`` the round's true
number of malicious participants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch

from fedpoison.attacks.base import UPDATE_ATTACKS
from fedpoison.attacks.ipm import ipm_attack
from fedpoison.attacks.line_search import Crafter, OptimalScaleAttack, deviation, line_search


def ipm_crafter(honest: torch.Tensor, num_malicious: int) -> Crafter:
    """``τ ↦`` ``m`` copies of ``−τ·mean(H)``."""
    return lambda tau: ipm_attack(honest, num_malicious, epsilon=tau)


def optimal_ipm_attack(
    benign: torch.Tensor,
    num_malicious: int,
    aggregate: Callable[[torch.Tensor], torch.Tensor],
    *,
    evals: int = 20,
) -> torch.Tensor:
    """``m`` copies of ``−τ*·mean(benign)``, with τ* from
    :func:`~fedpoison.attacks.line_search.line_search` (ByzFL's defaults, ``evals`` calls of
    ``aggregate`` on the ``(n, d)`` rows: benign first, the crafted copies after).

    Example: against the plain mean of two honest rows and one crafted row the deviation
    ``(1 + τ)·‖mean‖/3`` grows with τ, every proposal succeeds and τ* = 10·(2¹⁹ − 1).

        >>> import torch
        >>> from fedpoison.attacks import optimal_ipm_attack
        >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
        >>> optimal_ipm_attack(x, 1, lambda rows: rows.mean(dim=0)).tolist()  # −τ*·(2, 3)
        [[-10485740.0, -15728610.0]]
    """
    craft = ipm_crafter(benign, num_malicious)
    return craft(line_search(deviation(benign, aggregate, craft), evals))


@UPDATE_ATTACKS.register("optimal_ipm")
class OptimalIPM(OptimalScaleAttack):
    """Optimal-IPM against the known defense (needs ``threat.knows_defense=true`` and
    ``threat.knowledge=all``).

    Args:
        evals, start, delta, ratio: the line search (module docstring); ``ratio`` in (0.5, 1).
    """

    paper: ClassVar[str] = "ByzFL; Allouah et al. 2023, Fixing by Mixing (AISTATS)"

    def crafter(self, honest: torch.Tensor, num_malicious: int) -> Crafter:
        return ipm_crafter(honest, num_malicious)
