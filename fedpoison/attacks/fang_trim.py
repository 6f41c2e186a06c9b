"""Fang et al. 2020 attack on trimmed mean / median (USENIX Security, §3.3–3.4;
docs/conventions.md §C23).

Translation to the delta convention (``w ← w + η·Agg(Δ)``): the paper crafts local *models*
from the benign models' per-coordinate extremes and a multiplicative factor ``b``. Here the
same rule is applied to the *deltas* (as the FLTrust gradient-form ``trim_attack`` applies it
to gradients); ``s_j`` is the sign of the mean known delta, the direction in which parameter
``j`` would move without the attack, and the crafted values push the other way:

- ``s_j = −1`` (would decrease): values ≥ ``Δmax_j``, from ``[Δmax_j, b·Δmax_j]`` when
  ``Δmax_j > 0`` and from ``[Δmax_j, Δmax_j/b]`` otherwise;
- ``s_j ≥ 0`` (would increase; 0 treated as +1): values ≤ ``Δmin_j``, from
  ``[Δmin_j/b, Δmin_j]`` when ``Δmin_j > 0`` and from ``[b·Δmin_j, Δmin_j]`` otherwise.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.attacks.base import UPDATE_ATTACKS, AdversaryView, MaliciousReplies, UpdateAttack
from fedpoison.attacks.common import direction, uniform
from fedpoison.attacks.threat import Knowledge


def fang_trim_full(
    benign: torch.Tensor,
    direction_sign: torch.Tensor,
    num_malicious: int,
    generator: torch.Generator,
    b: float = 2.0,
) -> torch.Tensor:
    """Full knowledge: ``(m, d)`` values drawn uniformly, independently per attacker and
    coordinate, from the interval of the module docstring (benign max/min, factor ``b > 1``).

    ``direction_sign`` is ``s`` ``(d,)``; statistics source for max/min: benign only.
    """
    if b <= 1:
        raise ValueError(f"fang_trim: b must be > 1, got {b}")
    hi, lo = benign.max(dim=0).values, benign.min(dim=0).values
    # Interval endpoints [a, c] for "push up" (from the max) and "push down" (from the min).
    up_a, up_c = hi, torch.where(hi > 0, hi * b, hi / b)
    down_a, down_c = torch.where(lo > 0, lo / b, lo * b), lo
    decreasing = direction_sign < 0
    a = torch.where(decreasing, up_a, down_a)
    c = torch.where(decreasing, up_c, down_c)
    u = uniform((num_malicious, benign.shape[1]), generator, benign)
    return a + u * (c - a)


def fang_trim_partial(
    own: torch.Tensor, num_malicious: int, generator: torch.Generator
) -> torch.Tensor:
    """Partial knowledge: ``μ_j``, ``σ_j`` (population std) and ``s̃_j`` from the attackers'
    own honest updates; ``s̃_j = −1`` ⇒ ``U[μ_j+3σ_j, μ_j+4σ_j]``, else ``U[μ_j−4σ_j, μ_j−3σ_j]``."""
    mu, sigma = own.mean(dim=0), own.std(dim=0, correction=0)
    sign = torch.where(direction(own) < 0, 1.0, -1.0).to(own.dtype)
    u = uniform((num_malicious, own.shape[1]), generator, own)
    return mu + sign * (3.0 + u) * sigma


@UPDATE_ATTACKS.register("fang_trim")
class FangTrim(UpdateAttack):
    """Fang's trimmed-mean attack (also used against the median).

    Args:
        knowledge: ``all`` = full knowledge (benign extremes, ``s`` from all known updates,
            i.e. the round's honest updates: docs/conventions.md §C4);
            ``own`` = partial knowledge (``μ ± 3..4σ`` of the attackers' own updates).
        b: the full-knowledge scaling factor (paper: 2).
    """

    paper: ClassVar[str] = "Fang et al. 2020, Local Model Poisoning Attacks (USENIX Security)"
    knowledge: ClassVar[Knowledge] = "own"
    needs_defense: ClassVar[bool] = False

    def __init__(self, knowledge: Knowledge = "all", b: float = 2.0) -> None:
        if knowledge not in ("own", "all"):
            raise ValueError(f"fang_trim: knowledge must be 'own' or 'all', got {knowledge!r}")
        self.source: Knowledge = knowledge
        self.b = float(b)

    def required_knowledge(self) -> Knowledge:
        return self.source

    def craft(self, view: AdversaryView) -> MaliciousReplies:
        if self.source == "own":
            rows = fang_trim_partial(view.own, view.num_malicious, view.generator)
            return MaliciousReplies(rows)
        if view.benign is None:
            raise ValueError("fang_trim with knowledge=all needs threat.knowledge=all")
        s = direction(view.known)
        return MaliciousReplies(
            fang_trim_full(view.benign, s, view.num_malicious, view.generator, self.b)
        )
