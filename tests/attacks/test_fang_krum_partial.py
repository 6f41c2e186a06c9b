"""Fang et al. 2020 partial-knowledge Krum attack, Eq. (4) (docs/conventions.md §C22).

An oracle (a plain loop over the halving grid that re-runs a naive Krum on the copies of
``w′_1`` followed by the own updates), a constructed case where a search that starts from
``c`` copies and Eq. (4) (one copy first) give different λ and only Eq. (4)'s is selected by
the server's Krum, and an acceptance run in which partial knowledge clearly raises Krum's
error.
"""

from __future__ import annotations

import math

import pytest
import torch
from fedpoison_testing import run_simulation
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.aggregators.krum import krum
from fedpoison.attacks.fang_krum import (
    LAMBDA_MIN,
    SIMULATED_KRUM_F,
    fang_krum_partial,
    fang_krum_partial_lambda0,
)


def _naive_krum_index(rows: list[list[float]], f: int) -> int:
    """Krum transcribed: the row with the lowest sum of squared distances to its n−f−2
    nearest other rows; ties → lowest index."""
    n = len(rows)
    scores = []
    for i in range(n):
        dists = sorted(
            sum((a - b) ** 2 for a, b in zip(rows[i], rows[j], strict=True))
            for j in range(n)
            if j != i
        )
        scores.append(sum(dists[: n - f - 2]))
    return min(range(n), key=lambda i: (scores[i], i))


def _naive_lambda0(own: list[list[float]]) -> float:
    """Eq. (3) with the own updates as the benign set, f = 0 simulated Krum."""
    c, d = len(own), len(own[0])
    dist = [[math.dist(own[i], own[j]) for j in range(c)] for i in range(c)]
    spread = min(sum(dist[i]) for i in range(c)) / max(c - 1, 1)
    return (spread + max(math.hypot(*row) for row in own)) / math.sqrt(d)


def _naive_partial(own: list[list[float]], s: list[float]) -> float:
    """Eq. (4) as docs/conventions.md §C22 reads it: Krum must select w′_1 = −λ·s among
    {w′_1, w_1, …, w_c}; halve λ from λ0 until it does or λ < 1e-5, then add one more copy of
    w′_1 and repeat."""
    c = len(own)
    copies = 1
    while True:
        if copies + c >= 3:
            lam = _naive_lambda0(own)
            while lam >= LAMBDA_MIN:
                crafted = [-lam * x for x in s]
                if _naive_krum_index([crafted] * copies + own, SIMULATED_KRUM_F) < copies:
                    return lam
                lam /= 2
        copies += 1


@settings(max_examples=40, deadline=None)
@given(
    c=st.integers(min_value=1, max_value=7),
    d=st.integers(min_value=1, max_value=6),
    seed=st.integers(min_value=0, max_value=2**16),
    offset=st.floats(min_value=-2.0, max_value=2.0),
)
def test_partial_equals_naive_oracle(c: int, d: int, seed: int, offset: float) -> None:
    own = (
        torch.randn(c, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        + offset
    )
    s = torch.sign(own.mean(0))
    assert fang_krum_partial_lambda0(own) == pytest.approx(_naive_lambda0(own.tolist()), rel=1e-12)
    assert fang_krum_partial(own, s) == pytest.approx(
        _naive_partial(own.tolist(), s.tolist()), rel=1e-9
    )


def _c_copies_search(own: torch.Tensor, s: torch.Tensor) -> float:
    """A search that puts ``c`` copies of ``w′_1`` next to the own updates from the start
    (the reading of Eq. (4) the test below shows to fail), ``f = ⌊(2c−3)/2⌋``, halving from
    (max pairwise distance + max norm)/√d."""
    c, d = own.shape
    lam = (float(torch.cdist(own, own).max()) + float(own.norm(dim=1).max())) / math.sqrt(d)
    while lam >= LAMBDA_MIN:
        crafted = -lam * s
        if torch.equal(krum(torch.cat([crafted.expand(c, d), own]), (2 * c - 3) // 2), crafted):
            return lam
        lam /= 2
    return lam


def test_one_copy_first_differs_from_c_copies_and_is_selected_in_the_real_round() -> None:
    """Constructed case: 6 attackers, 24 benign clients, updates N(0.1, 1) in 50 dimensions.
    With c copies the crafted row always has a zero score, so λ stays at its start, far out of
    the benign cluster, and the server's Krum (f = 6) never picks it; Eq. (4) finds a smaller λ
    that the server's Krum does pick."""
    gen = torch.Generator().manual_seed(7)
    own, benign = torch.randn(6, 50, generator=gen) + 0.1, torch.randn(24, 50, generator=gen) + 0.1
    s = torch.sign(own.mean(0))
    c_copies, one_copy = _c_copies_search(own, s), fang_krum_partial(own, s)
    assert one_copy < c_copies / 1.5
    for lam, picked in ((c_copies, False), (one_copy, True)):
        crafted = (-lam * s).expand(6, 50)
        chosen = krum(torch.cat([crafted, benign]), 6)
        assert torch.equal(chosen, crafted[0]) is picked


# --------------------------------------------------------------------------- acceptance
ACCEPTANCE = [
    "progress=false",
    "checkpoint_every=0",
    "model=logreg",
    "partition=fang",
    "federation.num_clients=50",
    "threat.num_malicious=10",
    "defense=krum",
    "training.local_steps=1",
    "training.batch_size=32",
    "training.lr=0.3",
    "num_rounds=200",
    "eval_every=200",
]
MARGIN = (
    0.10  # measured: seed 0 no attack 0.803, partial 0.539 (a search starting from c copies: 0.844)
)


@pytest.mark.slow
def test_partial_knowledge_raises_krum_error(tmp_path) -> None:
    """Digits, 50 clients, Fang split q = 0.5, 10 attackers, logistic regression, one SGD step
    of 32 examples per round, 200 rounds: partial knowledge costs Krum clearly more than
    ``MARGIN`` of accuracy."""
    clean = run_simulation([*ACCEPTANCE, "attack=none"], tmp_path / "clean")["final"]["accuracy"]
    partial = run_simulation(
        [*ACCEPTANCE, "attack=fang_krum", "attack.update.knowledge=own", "threat.knowledge=own"],
        tmp_path / "partial",
    )["final"]["accuracy"]
    print(
        f"\n[fang_krum partial] Krum accuracy: no attack {clean:.4f}, "
        f"partial knowledge {partial:.4f}"
    )
    assert partial < clean - MARGIN
