"""ByzFL's line search for the attack factor τ, shared by Optimal-ALIE and Optimal-IPM.

ByzFL (``Optimal_ALittleIsEnough``, ``Optimal_InnerProductManipulation``; used by Allouah et
al., AISTATS 2023, "Fixing by Mixing") picks the scale τ of a base attack ``A_τ(H)`` that
maximises the deployed defense's deviation from the honest mean::

    J(τ) = ‖ Agg(H ∪ {m copies of A_τ(H)}) − mean(H) ‖₂

``H`` is the honest (benign) updates, the ``m`` crafted copies are appended after them, and
``Agg`` is the whole deployed defense, its pre-aggregators then its rule, run with the
defense's declared ``f`` (REFERENCES D28: ``Agg(PreAgg_L(… PreAgg_1(·)))``; fedpoison's
:func:`~fedpoison.attacks.adaptive.simulated_defense`). The search, verbatim from ByzFL (defaults:
``evals = 20``, ``start = 0``, ``delta = 10``, ``ratio = 0.8``)::

    best = start; J_best = J(start); δ = delta; left = evals − 1
    while left > 0:                          # expansion
        p = best + δ; left −= 1
        if J(p) > J_best: best, J_best = p, J(p); δ = 2δ
        else:             δ = ratio·δ; break
    while left > 0:                          # contraction
        p = best + δ; left −= 1
        if J(p) > J_best: best, J_best = p, J(p)
        δ = ratio·δ
    return best

It calls ``J`` exactly ``evals`` times and only ever proposes ``best + δ``: with
``delta > 0`` τ never goes below ``start`` (the search is one-sided), and its range is
``[start, start + delta·(2^(evals−1) − 1)]`` (10·(2¹⁹ − 1) = 5 242 870 with the defaults,
reached when ``J`` keeps increasing, e.g. against the plain mean).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import ClassVar

import torch

from fedpoison.aggregators.pipeline import Defense
from fedpoison.attacks.adaptive import check_simulable, simulated_defense
from fedpoison.attacks.base import AdversaryView, MaliciousReplies, UpdateAttack
from fedpoison.attacks.threat import Knowledge

Crafter = Callable[[float], torch.Tensor]
"""``τ ↦`` the ``m`` crafted rows ``(m, d)`` of the base attack at scale τ."""


def check_search(name: str, evals: int, delta: float, ratio: float) -> None:
    """ByzFL's constraints on the search parameters, as ``ValueError`` naming ``name``."""
    if isinstance(evals, bool) or not isinstance(evals, int) or evals < 1:
        raise ValueError(f"{name}: evals must be an integer ≥ 1, got {evals!r}")
    if delta == 0:
        raise ValueError(f"{name}: delta must be non-zero, got {delta}")
    if not 0.5 < ratio < 1:
        raise ValueError(f"{name}: ratio must lie in (0.5, 1), got {ratio}")


def line_search(
    objective: Callable[[float], float],
    evals: int = 20,
    start: float = 0.0,
    delta: float = 10.0,
    ratio: float = 0.8,
) -> float:
    """The τ maximising ``objective`` by ByzFL's expansion/contraction search (module
    docstring); ``objective`` is called exactly ``evals`` times, first at ``start``.

    Example: ``J`` increasing up to τ = 25, flat after. The expansion tries 10 and 30
    (both better), then 70 (not better); no later proposal beats J = 25, so the first τ tried
    on the plateau is kept. With ``J`` peaked at τ = 12 the search reaches 10, then only
    proposes values above its best: 10 + 3.36 is the first to beat 10, and it stays there.

        >>> from fedpoison.attacks.line_search import line_search
        >>> line_search(lambda tau: min(tau, 25.0))
        30.0
        >>> round(line_search(lambda tau: -abs(tau - 12.0)), 4)
        13.3554
    """
    best, best_value = start, objective(start)
    left, step = evals - 1, delta
    while left > 0:
        left -= 1
        proposal = best + step
        value = objective(proposal)
        if value > best_value:
            best, best_value, step = proposal, value, 2.0 * step
        else:
            step *= ratio
            break
    while left > 0:
        left -= 1
        proposal = best + step
        value = objective(proposal)
        if value > best_value:
            best, best_value = proposal, value
        step *= ratio
    return best


def deviation(
    honest: torch.Tensor, aggregate: Callable[[torch.Tensor], torch.Tensor], craft: Crafter
) -> Callable[[float], float]:
    """``J(τ) = ‖aggregate(honest ∪ craft(τ)) − mean(honest)‖₂``, the crafted rows appended
    after the honest ones (ByzFL's order)."""
    center = honest.mean(dim=0)

    def objective(tau: float) -> float:
        rows = torch.cat([honest, craft(tau).to(honest)])
        return float(torch.linalg.vector_norm(aggregate(rows) - center))

    return objective


class OptimalScaleAttack(UpdateAttack):
    """A base attack ``A_τ`` whose τ is found by :func:`line_search` against the known
    defense (omniscient: ``H`` = the benign updates). Subclasses give :meth:`crafter`."""

    knowledge: ClassVar[Knowledge] = "all"
    needs_defense: ClassVar[bool] = True

    def __init__(
        self, evals: int = 20, start: float = 0.0, delta: float = 10.0, ratio: float = 0.8
    ) -> None:
        check_search(self.name, evals, delta, ratio)
        self.evals, self.start = evals, float(start)
        self.delta, self.ratio = float(delta), float(ratio)

    @abstractmethod
    def crafter(self, honest: torch.Tensor, num_malicious: int) -> Crafter:
        """``τ ↦`` the ``num_malicious`` rows of the base attack on ``honest``."""

    def scale(
        self,
        honest: torch.Tensor,
        num_malicious: int,
        aggregate: Callable[[torch.Tensor], torch.Tensor],
    ) -> float:
        """The τ the search returns for these honest rows and this defense."""
        craft = self.crafter(honest, num_malicious)
        objective = deviation(honest, aggregate, craft)
        return line_search(objective, self.evals, self.start, self.delta, self.ratio)

    def check_defense(self, defense: Defense) -> None:
        """The search re-runs the deployed defense
        (:func:`~fedpoison.attacks.adaptive.check_simulable`)."""
        check_simulable(self.name, defense)

    def craft(self, view: AdversaryView) -> MaliciousReplies:
        if view.defense is None or view.f is None:
            raise ValueError(f"{self.name} needs the defense; set threat.knows_defense=true")
        self.check_defense(view.defense)
        if view.benign is None:
            raise ValueError(f"{self.name} needs the benign updates; set threat.knowledge=all")
        honest, m = view.benign, view.num_malicious
        tau = self.scale(honest, m, simulated_defense(view))
        return MaliciousReplies(self.crafter(honest, m)(tau))
