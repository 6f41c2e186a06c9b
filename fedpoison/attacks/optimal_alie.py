"""Optimal-ALIE (ByzFL's ``Optimal_ALittleIsEnough``; Allouah et al., AISTATS 2023, "Fixing by
Mixing"): ALIE whose scale τ is found by line search against the deployed defense.

Base attack, as ByzFL codes it on *gradients*: ``ALIE_τ(H) = mean(H) + τ·σ(H)``, ``σ`` the
coordinate-wise std with ``ddof = 1`` (ByzFL's docstring says 1/n; its code, followed here,
divides by ``|H| − 1``), ``H`` the honest updates (omniscient: docs/conventions.md §C4). On
deltas (``Δ ≈ −lr·g``) that is ``mean(H) − τ·σ(H)``, hence ``sign = −1`` by default;
``sign = +1`` is the direction of :class:`~fedpoison.attacks.alie.ALIE` (Baruch et al.'s
official code in delta form, docs/conventions.md §C19). τ maximises the deviation
``J(τ) = ‖Agg(H ∪ {m copies}) − mean(H)‖`` by ByzFL's search over
``[start, start + delta·(2^(evals−1) − 1)]`` (:mod:`~fedpoison.attacks.line_search`; 20
evaluations from τ = 0 with step 10 and ratio 0.8 by default). ``Agg`` is the server's
deployed defense, pre-aggregators (e.g. clipping, NNM) then rule, with its declared ``f``,
simulated on a copy as ByzFL does (REFERENCES D28); ``m`` is the round's true number of
malicious participants.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

import torch

from fedpoison.attacks.base import UPDATE_ATTACKS
from fedpoison.attacks.common import coordinate_std, repeat_rows
from fedpoison.attacks.line_search import Crafter, OptimalScaleAttack, deviation, line_search


def alie_crafter(
    honest: torch.Tensor, num_malicious: int, sign: int = -1, unbiased_std: bool = True
) -> Crafter:
    """``τ ↦`` ``m`` copies of ``mean(H) + sign·τ·σ(H)`` (statistics computed once)."""
    if sign not in (-1, 1):
        raise ValueError(f"optimal_alie: sign must be +1 or -1, got {sign}")
    mu, sigma = honest.mean(dim=0), coordinate_std(honest, unbiased_std)
    return lambda tau: repeat_rows(mu + (sign * tau) * sigma, num_malicious)


def optimal_alie_attack(
    benign: torch.Tensor,
    num_malicious: int,
    aggregate: Callable[[torch.Tensor], torch.Tensor],
    *,
    sign: int = -1,
    unbiased_std: bool = True,
    evals: int = 20,
) -> torch.Tensor:
    """``m`` copies of ``mean + sign·τ*·σ`` of ``benign`` ``(n − m, d)``, with τ* from
    :func:`~fedpoison.attacks.line_search.line_search` (ByzFL's defaults, ``evals`` calls of
    ``aggregate`` on the ``(n, d)`` rows: benign first, the crafted copies after).

    Example (ByzFL's docstring case without its pre-aggregators): against the plain mean
    every proposal deviates more, so τ* = 10·(2¹⁹ − 1) and the row is ``mean + τ*·3``.

        >>> import torch
        >>> from fedpoison.attacks import optimal_alie_attack
        >>> x = torch.arange(1.0, 10.0, dtype=torch.float64).reshape(3, 3)  # σ = 3 (ddof = 1)
        >>> optimal_alie_attack(x, 1, lambda rows: rows.mean(dim=0), sign=1).tolist()
        [[15728614.0, 15728615.0, 15728616.0]]
    """
    craft = alie_crafter(benign, num_malicious, sign, unbiased_std)
    return craft(line_search(deviation(benign, aggregate, craft), evals))


@UPDATE_ATTACKS.register("optimal_alie")
class OptimalALIE(OptimalScaleAttack):
    """Optimal-ALIE against the known defense (needs ``threat.knows_defense=true`` and
    ``threat.knowledge=all``).

    Args:
        sign: ``-1`` (ByzFL's ``+τ·σ`` on gradients, in delta form) or ``+1`` (the ``alie``
            attack's direction).
        unbiased_std: ``True`` = ``ddof = 1`` as ByzFL's code; ``False`` = population std.
        evals, start, delta, ratio: the line search (module docstring); ``ratio`` in (0.5, 1).
    """

    paper: ClassVar[str] = "ByzFL; Allouah et al. 2023, Fixing by Mixing (AISTATS)"

    def __init__(
        self,
        sign: int = -1,
        unbiased_std: bool = True,
        evals: int = 20,
        start: float = 0.0,
        delta: float = 10.0,
        ratio: float = 0.8,
    ) -> None:
        super().__init__(evals, start, delta, ratio)
        if sign not in (-1, 1):
            raise ValueError(f"{self.name}: sign must be +1 or -1, got {sign}")
        self.sign = int(sign)
        self.unbiased_std = bool(unbiased_std)

    def crafter(self, honest: torch.Tensor, num_malicious: int) -> Crafter:
        return alie_crafter(honest, num_malicious, self.sign, self.unbiased_std)
