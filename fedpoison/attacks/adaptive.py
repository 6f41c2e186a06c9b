"""AGR-tailored attack (Shejwalkar & Houmansadr 2021, NDSS, §IV-B, Eq. (5)), defense-aware.

The paper's objective for a known aggregation rule ``f_agr``::

    argmax_γ ‖∇_b − f_agr(∇_m, …, ∇_m, ∇_{m+1}, …, ∇_n)‖,   ∇_m = ∇_b − γ·∇_p

with ``∇_b`` the benign mean. What is implemented, following the official tailored code
(e.g. its trimmed-mean attack): the halving search of
:func:`~fedpoison.attacks.shejwalkar.halving_search` (γ = 10, step 10, tol 1e-5), where γ
*succeeds* when the deviation ``‖Δ_b − agg(γ)‖`` exceeds the deviation at the previously
**tried** γ (whether that one succeeded or not; the first try compares with −1). ``agg`` is the
known defense run on the ``m`` malicious copies followed by the ``n − m`` benign rows with the
known ``f``: the whole deployed pipeline, pre-aggregators then rule, as the server runs it
(:func:`simulated_defense`). This is a local search, not a guaranteed global maximiser of
Eq. (5). docs/conventions.md §C21.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import ClassVar

import torch

from fedpoison.aggregators.base import RoundContext
from fedpoison.aggregators.pipeline import Defense
from fedpoison.attacks.base import UPDATE_ATTACKS, AdversaryView, MaliciousReplies, UpdateAttack
from fedpoison.attacks.common import repeat_rows
from fedpoison.attacks.shejwalkar import (
    PERTURBATIONS,
    Perturbation,
    halving_search,
    perturbation_vector,
)
from fedpoison.attacks.threat import Knowledge


def adaptive_attack(
    benign: torch.Tensor,
    num_malicious: int,
    aggregate: Callable[[torch.Tensor], torch.Tensor],
    perturbation: Perturbation = "unit_vec",
) -> torch.Tensor:
    """``m`` copies of ``Δ_b − γ·∇_p`` with ``γ`` maximising the aggregate's deviation from
    the benign mean ``Δ_b`` by the search described in the module docstring.

    Args:
        benign: the benign updates ``(n − m, d)`` (statistics source: benign only).
        aggregate: the known defense as a function of the ``(n, d)`` rows
            (malicious copies first).
        perturbation: ``∇_p`` in delta form, see
            :func:`~fedpoison.attacks.shejwalkar.perturbation_vector`.
    """
    center = benign.mean(dim=0)
    p = perturbation_vector(benign, perturbation)
    previous = -1.0

    def deviates_more(gamma: float) -> bool:
        nonlocal previous
        rows = torch.cat([repeat_rows(center - gamma * p, num_malicious), benign])
        deviation = float(torch.linalg.vector_norm(aggregate(rows) - center))
        success = deviation > previous
        previous = deviation
        return success

    gamma = halving_search(deviates_more)
    return repeat_rows(center - gamma * p, num_malicious)


def simulated_defense(view: AdversaryView) -> Callable[[torch.Tensor], torch.Tensor]:
    """The known defense as a pure function of the rows: ``view.defense`` whole, its
    pre-aggregators then its rule, each stage with the ``f`` it sees at the server
    (:meth:`~fedpoison.aggregators.pipeline.Defense.stages`, from ``f = view.f`` at the input).

    ByzFL's defense-aware attacks search through the deployed pre-aggregators too
    (REFERENCES D28's objective ``Agg(PreAgg_L(… PreAgg_1(·)))``). Each call runs on a fresh
    deep copy of the pipeline (stateful rules such as centered clipping must not be advanced
    by the adversary's probes) with placeholder client ids ``0..n−1`` and a generator
    re-seeded to the same value every call (one draw from ``view.generator``), so randomised
    stages (bucketing's permutation, randomised rules) are compared under common randomness.
    """
    defense, f = view.defense, view.f
    if defense is None or f is None:
        raise ValueError("adaptive needs the defense; set threat.knows_defense=true")
    device = view.generator.device
    seed = int(torch.randint(0, 2**62, (1,), generator=view.generator, device=device))

    def aggregate(rows: torch.Tensor) -> torch.Tensor:
        probe: Defense = copy.deepcopy(defense)
        ctx = RoundContext(
            f=f,
            client_ids=tuple(range(rows.shape[0])),
            generator=torch.Generator(device=device).manual_seed(seed),
            global_weights=view.global_weights,
            server_round=view.server_round,
        )
        return probe(rows, ctx).aggregate

    return aggregate


def check_simulable(attack: str, defense: Defense) -> None:
    """``ValueError`` when the adversary cannot re-run ``defense``: a rule that needs the
    server's root-set update (FLTrust) is outside its knowledge. Every pre-aggregator needs
    only the rows, ``f`` and a generator, so it can be simulated."""
    if defense.rule.needs_server_update:
        raise ValueError(
            f"attack {attack} cannot simulate defense {defense.name}: "
            "it needs the server's root-set update; choose another defense or attack"
        )


@UPDATE_ATTACKS.register("adaptive")
class Adaptive(UpdateAttack):
    """Shejwalkar & Houmansadr's AGR-tailored attack against the known defense.

    Args:
        perturbation: ``unit_vec`` (default: deviate along ``−Δ_b/‖Δ_b‖``) | ``std`` | ``sign``.
    """

    paper: ClassVar[str] = "Shejwalkar & Houmansadr 2021, Manipulating the Byzantine (NDSS)"
    knowledge: ClassVar[Knowledge] = "all"
    needs_defense: ClassVar[bool] = True

    def __init__(self, perturbation: Perturbation = "unit_vec") -> None:
        if perturbation not in PERTURBATIONS:
            raise ValueError(f"adaptive: perturbation must be one of {PERTURBATIONS}")
        self.perturbation: Perturbation = perturbation

    def check_defense(self, defense: Defense) -> None:
        """The attack re-runs the deployed defense (:func:`check_simulable`)."""
        check_simulable(self.name, defense)

    def craft(self, view: AdversaryView) -> MaliciousReplies:
        if view.defense is not None:
            self.check_defense(view.defense)
        if view.benign is None:
            raise ValueError("adaptive needs the benign updates; set threat.knowledge=all")
        rows = adaptive_attack(
            view.benign, view.num_malicious, simulated_defense(view), self.perturbation
        )
        return MaliciousReplies(rows)
