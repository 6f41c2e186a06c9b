"""Divide-and-Conquer: the shared rule checks, Alg. 2 with numpy's SVD as oracle and its
filtering of ⌊c·f⌋ rows per iteration."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, normal, seeds
from rule_tester import RuleTester, context, data

from fedpoison.aggregators.base import RoundContext
from fedpoison.aggregators.dnc import DnC


class TestDnC(RuleTester):
    rule = DnC
    bound = "c·f"


@settings(max_examples=20, deadline=None)
@given(
    n=st.integers(3, 10),
    d=st.integers(2, 30),
    seed=seeds,
    f=st.integers(0, 2),
    b=st.integers(1, 40),
)
def test_dnc_matches_svd_oracle(n: int, d: int, seed: int, f: int, b: int) -> None:
    """Alg. 2 with numpy's SVD on the same coordinate subsamples."""
    x = normal(n, d, seed)
    ctx = RoundContext(
        f=f, client_ids=tuple(range(n)), generator=torch.Generator().manual_seed(seed)
    )
    got = DnC(niters=3, b=b, c=1.0)(x, ctx)
    g, good = torch.Generator().manual_seed(seed), set(range(n))
    for _ in range(3):
        coords = torch.randperm(d, generator=g)[:b].numpy()
        sub = x.numpy()[:, coords]
        centred = sub - sub.mean(axis=0)
        v = np.linalg.svd(centred, full_matrices=False)[2][0]
        scores = (centred @ v) ** 2
        good &= set(sorted(range(n), key=lambda i: (scores[i], i))[: n - f])
    if len(good) == n - f or f == 0:  # no near-tie in the scores decided the cut
        assert set(torch.nonzero(got.weights).flatten().tolist()) == good
        close(got.aggregate, x.numpy()[sorted(good)].mean(axis=0))


def test_dnc_drops_c_f_rows_per_iteration_and_intersects() -> None:
    x = data(12, 40)
    x[:3] += 25 * torch.linspace(1, 2, 3, dtype=x.dtype)[:, None]  # one common direction
    result = DnC(niters=4, b=10, c=1.0)(x, context(x, f=3))
    assert bool((result.weights[:3] == 0).all())
    assert int((result.weights > 0).sum()) <= 9
    torch.testing.assert_close(result.aggregate, result.weights @ x)
    loose = DnC(niters=1, b=40, c=2.0)(x, context(x, f=3))
    assert int((loose.weights > 0).sum()) == 6
