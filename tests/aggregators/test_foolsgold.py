"""FoolsGold: the shared rule checks, the official loop as oracle, sybils rejected over rounds,
histories keyed by client id, and absent clients compared only when asked."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, normal, seeds
from rule_tester import RuleTester, context, data

from fedpoison.aggregators.foolsgold import FoolsGold, foolsgold_weights


class TestFoolsGold(RuleTester):
    """Not unanimous: identical histories look like sybils and get weight 0."""

    rule = FoolsGold


def foolsgold_naive(hist: np.ndarray) -> np.ndarray:
    """The official ``deep-fg/fg/foolsgold.py`` loop, transcribed, with the diagonal
    ``cos(H_i, H_i) − 1`` exactly 0 (the official code leaves ±1e-16 there, which the
    pardoning step can blow up into an arbitrary sign when every other cosine is ≤ 0)."""
    n = hist.shape[0]
    norms = np.linalg.norm(hist, axis=1)
    cs = np.array(
        [
            [0.0 if i == j else hist[i] @ hist[j] / (norms[i] * norms[j]) for j in range(n)]
            for i in range(n)
        ]
    )
    maxcs = np.max(cs, axis=1)
    for i in range(n):
        for j in range(n):
            if i != j and maxcs[i] < maxcs[j]:
                cs[i][j] = cs[i][j] * maxcs[i] / maxcs[j]
    wv = 1 - np.max(cs, axis=1)
    wv = np.clip(wv, 0, 1)
    wv[wv < 1e-12] = 0  # rounding of cos ≈ 1 (the library's documented guard)
    with np.errstate(divide="ignore", invalid="ignore"):
        wv = wv / np.max(wv)
        wv[wv == 1] = 0.99
        wv = np.log(wv / (1 - wv)) + 0.5
    return np.clip(wv, 0, 1)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(2, 8), d=st.integers(2, 5), seed=seeds, sybils=st.integers(0, 3))
def test_foolsgold_matches_official_loop(n: int, d: int, seed: int, sybils: int) -> None:
    h = normal(n, d, seed)
    k = min(sybils, n)  # the first k histories point the same way
    h[:k] = h[0] * torch.linspace(1, 2, k, dtype=torch.float64)[:, None]
    want = foolsgold_naive(h.numpy())
    if np.isnan(want).any():  # every client a sybil: the official code divides 0 by 0
        assert foolsgold_weights(h).abs().max() == 0
    else:
        close(foolsgold_weights(h), want, tol=1e-7)


def test_foolsgold_rejects_sybils_over_rounds() -> None:
    rule = FoolsGold()
    g = torch.Generator().manual_seed(0)
    direction = torch.randn(20, generator=g, dtype=torch.float64)
    for _ in range(3):
        honest = torch.randn(7, 20, generator=g, dtype=torch.float64)
        sybils = direction + 0.01 * torch.randn(3, 20, generator=g, dtype=torch.float64)
        x = torch.cat([honest, sybils])
        result = rule(x, context(x, client_ids=(3, 4, 5, 6, 7, 8, 9, 100, 101, 102)))
    assert bool((result.weights[7:] == 0).all()) and bool((result.weights[:7] > 0).all())
    torch.testing.assert_close(result.aggregate, result.weights @ x)
    assert rule.state_dict()["ids"] == [3, 4, 5, 6, 7, 8, 9, 100, 101, 102]


def test_foolsgold_history_follows_client_ids_not_rows() -> None:
    x1, x2 = data(5, seed=1), data(5, seed=2)
    a, b = FoolsGold(), FoolsGold()
    a(x1, context(x1, client_ids=(0, 1, 2, 3, 4)))
    b(x1.flip(0), context(x1, client_ids=(4, 3, 2, 1, 0)))
    ra = a(x2, context(x2, client_ids=(0, 1, 2, 3, 4)))
    rb = b(x2.flip(0), context(x2, client_ids=(4, 3, 2, 1, 0)))
    torch.testing.assert_close(ra.aggregate, rb.aggregate)
    torch.testing.assert_close(ra.weights, rb.weights.flip(0))
    c = FoolsGold()
    c.load_state_dict(a.state_dict())
    torch.testing.assert_close(c(x1, context(x1)).weights, a(x1, context(x1)).weights)
    with pytest.raises(ValueError, match="distinct client ids"):
        FoolsGold()(x1, context(x1, client_ids=(0, 0, 1, 2, 3)))


def test_foolsgold_absent_clients_count_only_when_asked() -> None:
    g = torch.Generator().manual_seed(3)
    sybil = torch.randn(8, generator=g, dtype=torch.float64)
    first = torch.cat([torch.randn(4, 8, generator=g, dtype=torch.float64), sybil[None]])
    second = torch.cat([torch.randn(4, 8, generator=g, dtype=torch.float64), sybil[None]])
    ids1, ids2 = (0, 1, 2, 3, 50), (4, 5, 6, 7, 51)  # sybils 50 and 51 never meet
    for compare_absent, rejected in ((True, True), (False, False)):
        rule = FoolsGold(compare_absent=compare_absent)
        rule(first, context(first, client_ids=ids1))
        result = rule(second, context(second, client_ids=ids2))
        assert bool(result.weights[4] == 0) == rejected
