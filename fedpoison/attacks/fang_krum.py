"""Fang et al. 2020 attack on Krum (USENIX Security, §3.2, Eqs. (1)–(4); docs/conventions.md §C22).

Delta translation: the paper crafts ``w′_1 = w_Re − λ·s`` with ``w_Re`` the current global
model and ``s_j`` the direction in which parameter ``j`` would change without the attack. As
a delta, ``Δ′_1 = w′_1 − w_Re = −λ·s`` with ``s = sign(mean known Δ)``. Distances between
models equal distances between deltas, and ``D(w_i, w_Re) = ‖Δ_i‖``. Krum itself is
:func:`fedpoison.aggregators.krum.krum` (``n−f−2`` nearest, squared distances).
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch

from fedpoison.aggregators.krum import krum
from fedpoison.attacks.base import UPDATE_ATTACKS, AdversaryView, MaliciousReplies, UpdateAttack
from fedpoison.attacks.common import direction, normal, pairwise_sq_dists, repeat_rows, uniform
from fedpoison.attacks.threat import Knowledge

LAMBDA_MIN = 1e-5


def fang_krum_lambda0(benign: torch.Tensor, num_participants: int, num_malicious: int) -> float:
    """Eq. (3)'s upper bound on λ (Fang's ``D`` = non-squared Euclidean distance)::

        λ0 = 1/((n−2c−1)√d) · min_{i∈B} Σ_{l∈Γ̃_i} ‖Δ_l − Δ_i‖ + 1/√d · max_{i∈B} ‖Δ_i‖

    ``Γ̃_i`` = the ``n−c−2`` benign updates closest to ``Δ_i``; ``n`` participants, ``c``
    malicious, ``B`` the benign rows. Needs ``n ≥ 2c+3`` (Krum's own precondition).
    """
    n, c, d = num_participants, num_malicious, benign.shape[1]
    if n < 2 * c + 3:
        raise ValueError(f"fang_krum: Krum needs n ≥ 2f+3, got n={n}, f={c}")
    dist = pairwise_sq_dists(benign).sqrt()
    dist.fill_diagonal_(float("inf"))
    nearest = torch.topk(dist, n - c - 2, dim=1, largest=False).values.sum(dim=1)
    farthest = float(torch.linalg.vector_norm(benign.to(torch.float64), dim=1).max())
    return (float(nearest.min()) / (n - 2 * c - 1) + farthest) / math.sqrt(d)


def _halve_until_selected(
    lam: float, s: torch.Tensor, copies: int, others: torch.Tensor, f: int
) -> tuple[float, bool]:
    """Halve ``lam`` until Krum (with ``f``) on ``copies`` rows ``−λ·s`` followed by ``others``
    selects the crafted row, or until ``lam < LAMBDA_MIN``; returns ``(λ, selected)``."""
    while lam >= LAMBDA_MIN:
        crafted = -lam * s
        rows = torch.cat([repeat_rows(crafted, copies), others])
        if torch.equal(krum(rows, f), crafted):
            return lam, True
        lam /= 2
    return lam, False


def fang_krum_full(benign: torch.Tensor, s: torch.Tensor, num_malicious: int) -> float:
    """Full knowledge: the λ of Eq. (2), searched by halving from Eq. (3)'s bound until Krum
    (``f = c``, docs/conventions.md §C5) over the ``c`` crafted copies and the benign updates
    selects the crafted row. When none is, the first λ below ``LAMBDA_MIN`` is returned."""
    c = num_malicious
    lam0 = fang_krum_lambda0(benign, benign.shape[0] + c, c)
    return _halve_until_selected(lam0, s, c, benign, c)[0]


SIMULATED_KRUM_F = 0
"""The ``f`` of the Krum the partial-knowledge adversary runs on its ``rows = copies + c``
models (Eq. (4)). The server's ``f = c`` is undefined there (Krum needs ``rows ≥ 2f+3``; with
one crafted row ``rows−c−2 < 0`` neighbours). ``f = 0`` (defined from 3 rows on) scores each
row against all but one of the others, the closest analogue of the server's Krum, which
scores the crafted row against ``n−c−2`` of ``n−1`` rows (78 % for n = 50, c = 10; f = 0 on
c+1 rows: (c−1)/c = 90 %; the largest valid ``f = ⌊(rows−3)/2⌋``: about 50 %). Measured on
digits (50 clients, Fang split q = 0.5, 10 attackers, logistic regression, 200 one-step
rounds, seeds 0–3), Krum's final accuracy: 0.54 / 0.64 / 0.65 / 0.09 with ``f = 0`` (mean
0.48), 0.69 / 0.64 / 0.65 / 0.09 with the largest valid ``f`` (0.52); full knowledge
0.44 / 0.51 / 0.73 / 0.60 (0.57); no attack 0.80 / 0.85 / 0.74 / 0.71 (0.78); a search starting
with ``c`` copies: 0.84 at seed 0.
"""


def fang_krum_partial_lambda0(own: torch.Tensor) -> float:
    """Eq. (3)'s bound with the ``c`` own updates as the benign set (Theorem 1 for the
    simulated Krum of Eq. (4) with one crafted row and ``f = 0``)::

        λ0 = 1/((c−1)√d) · min_i Σ_{l≠i} ‖Δ_l − Δ_i‖ + 1/√d · max_i ‖Δ_i‖

    An own row's ``rows−2 = c−1`` Krum neighbours are the other ``c−1`` own updates (the
    ``n−c−2`` benign neighbours of Eq. (3)), and the crafted row has ``c−1`` own neighbours
    (Eq. (3)'s ``n−2c−1``). With ``c = 1`` the first term is empty: λ0 = ``‖Δ_1‖/√d``.
    """
    c, d = own.shape[0], own.shape[1]
    farthest = float(torch.linalg.vector_norm(own.to(torch.float64), dim=1).max())
    spread = float(pairwise_sq_dists(own).sqrt().sum(dim=1).min()) / max(c - 1, 1)
    return (spread + farthest) / math.sqrt(d)


def fang_krum_partial(own: torch.Tensor, s: torch.Tensor) -> float:
    """Partial knowledge, Eq. (4): the largest λ on the halving grid for which Krum selects
    ``w′_1 = w_Re − λ·s̃`` among ``{w′_1, w_1, …, w_c}``, the crafted model and the ``c``
    attackers' own before-attack updates (docs/conventions.md §C22).

    The search starts from **one** crafted row: with ``c`` copies the crafted row's nearest
    neighbours are its own copies, its Krum score stays near zero whatever λ is, and the λ
    found is far too large for the real round, where the crafted rows then sit outside the
    benign cluster and are never selected. λ starts at :func:`fang_krum_partial_lambda0` and
    is halved until Krum (``f`` = :data:`SIMULATED_KRUM_F`, ties → lowest index, the crafted
    row first) selects the crafted row. Only when no λ ≥ ``LAMBDA_MIN`` is selected (or Krum is
    undefined on that many rows) is one more copy of ``w′_1`` added and the search repeated.
    Each added copy adds a zero to the crafted row's score and a positive distance to every
    own row's, so the loop ends; with ``c = 1`` at two copies with λ = λ0 (one own update gives
    no constraint).
    """
    c = own.shape[0]
    lam0 = fang_krum_partial_lambda0(own)
    copies = 1
    while True:
        if copies + c >= 2 * SIMULATED_KRUM_F + 3:
            lam, selected = _halve_until_selected(lam0, s, copies, own, SIMULATED_KRUM_F)
            if selected:
                return lam
        copies += 1


def fang_krum_attack(
    known: torch.Tensor,
    num_malicious: int,
    generator: torch.Generator,
    *,
    benign: torch.Tensor | None,
    epsilon: float = 0.01,
) -> torch.Tensor:
    """``(m, d)`` rows: ``Δ′_1 = −λ·s`` and ``m−1`` random points within distance ``ε`` of it
    (uniform direction, radius ``U[0, ε]``).

    ``s = sign(mean(known))`` (the round's honest updates the adversary knows, docs/conventions.md
    §C4: all honest updates under full knowledge, the own updates ``s̃`` under partial).
    ``benign`` given ⇒ full knowledge (:func:`fang_krum_full`); ``None`` ⇒ partial
    (:func:`fang_krum_partial` on ``known``, which must then be the own updates).

    Example: partial knowledge, three attackers whose own updates have mean (1.5, 1.5), so
    ``s = (+1, +1)`` and the crafted delta is ``−λ·(1, 1)``; the other two attackers send
    points within ``ε = 0.01`` of it.

        >>> import torch
        >>> from fedpoison.attacks import fang_krum_attack
        >>> own = torch.tensor([[1, 2], [2, 1], [1.5, 1.5]], dtype=torch.float64)
        >>> rows = fang_krum_attack(own, 3, torch.Generator().manual_seed(0), benign=None)
        >>> [round(v, 4) for v in rows[0].tolist()]
        [-2.0811, -2.0811]
        >>> bool((rows[1:] - rows[0]).norm(dim=1).max() <= 0.01)
        True
    """
    s = direction(known)
    lam = (
        fang_krum_full(benign, s, num_malicious)
        if benign is not None
        else fang_krum_partial(known, s)
    )
    crafted = -lam * s
    shape = (num_malicious - 1, known.shape[1])
    offsets = normal(shape, generator, known)
    offsets = offsets / torch.linalg.vector_norm(offsets, dim=1, keepdim=True).clamp_min(1e-30)
    radius = epsilon * uniform((num_malicious - 1, 1), generator, known)
    return torch.cat([crafted.unsqueeze(0), crafted + radius * offsets])


@UPDATE_ATTACKS.register("fang_krum")
class FangKrum(UpdateAttack):
    """Fang's Krum attack.

    Args:
        knowledge: ``all`` = full knowledge (benign updates in the Krum simulation, paper
            default); ``own`` = partial knowledge (Eq. (4), own updates only).
        epsilon: radius around ``Δ′_1`` for the other ``c−1`` crafted updates (paper: 0.01).
    """

    paper: ClassVar[str] = "Fang et al. 2020, Local Model Poisoning Attacks (USENIX Security)"
    knowledge: ClassVar[Knowledge] = "own"
    needs_defense: ClassVar[bool] = False

    def __init__(self, knowledge: Knowledge = "all", epsilon: float = 0.01) -> None:
        if knowledge not in ("own", "all"):
            raise ValueError(f"fang_krum: knowledge must be 'own' or 'all', got {knowledge!r}")
        self.source: Knowledge = knowledge
        self.epsilon = float(epsilon)

    def required_knowledge(self) -> Knowledge:
        return self.source

    def craft(self, view: AdversaryView) -> MaliciousReplies:
        if self.source == "own":
            rows = fang_krum_attack(
                view.own, view.num_malicious, view.generator, benign=None, epsilon=self.epsilon
            )
            return MaliciousReplies(rows)
        if view.benign is None:
            raise ValueError("fang_krum with knowledge=all needs threat.knowledge=all")
        rows = fang_krum_attack(
            view.known, view.num_malicious, view.generator, benign=view.benign, epsilon=self.epsilon
        )
        return MaliciousReplies(rows)
