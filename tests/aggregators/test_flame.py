"""FLAME: the shared rule checks (noise-free for the symmetries), the HDBSCAN oracle, its
noise from the generator, the global model it needs and a sybil minority rejected."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, normal, seeds
from rule_tester import RuleTester, context, data
from sklearn.cluster import HDBSCAN

from fedpoison.aggregators.base import RoundContext
from fedpoison.aggregators.flame import Flame


class TestFlame(RuleTester):
    rule = Flame
    exact = {"lam": 0.0}
    bound = "2f+1"

    def honest_box(self, x, honest):
        """FLAME averages rows clipped to the median norm S, then adds N(0, (λS)²): the box of
        the honest rows after clipping (either median convention), widened by 6σ of the
        default λ = 0.001 (the majority shares a direction; the exact rule runs noise-free)."""
        lo, hi = honest.min(dim=0).values, honest.max(dim=0).values
        norms = x.norm(dim=1)
        boxes = []
        for s in (norms.median(), norms.quantile(0.5)):
            clipped = honest * (s / honest.norm(dim=1)).clamp(max=1.0)[:, None]
            boxes += [clipped.min(dim=0).values, clipped.max(dim=0).values]
        lo = torch.stack([lo, *boxes]).min(dim=0).values
        hi = torch.stack([hi, *boxes]).max(dim=0).values
        return lo, hi, 6 * 0.001 * float(norms.quantile(0.5))


def test_missing_global_weights_is_an_error() -> None:
    x = data()
    with pytest.raises(ValueError, match="flame: needs .*global_weights"):
        Flame()(x, context(x, global_weights=None))


@settings(max_examples=15, deadline=None)
@given(n=st.integers(3, 12), d=st.integers(2, 6), seed=seeds)
def test_flame_matches_oracle(n: int, d: int, seed: int) -> None:
    x = normal(n, d, seed)
    x[: n // 2 + 1] += 3.0  # a majority that points the same way
    g = normal(1, d, seed + 1)[0]
    models = (x + g).numpy()
    cos = np.array(
        [[a @ b / np.linalg.norm(a) / np.linalg.norm(b) for b in models] for a in models]
    )
    dist = np.clip(1 - cos, 0, None)
    np.fill_diagonal(dist, 0)
    labels = (
        HDBSCAN(
            metric="precomputed",
            min_cluster_size=n // 2 + 1,
            min_samples=1,
            allow_single_cluster=True,
            copy=True,
        )
        .fit(dist)
        .labels_
    )
    admitted = [i for i in range(n) if labels[i] >= 0]
    norms = np.linalg.norm(x.numpy(), axis=1)
    bound = float(np.median(norms))
    clipped = [x.numpy()[i] * min(1.0, bound / norms[i]) for i in admitted]
    ctx = RoundContext(f=0, client_ids=tuple(range(n)), global_weights=g)
    got = Flame(lam=0.0)(x, ctx)
    assert torch.nonzero(got.weights).flatten().tolist() == admitted
    if admitted:
        close(got.aggregate, np.mean(clipped, axis=0))


def test_flame_noise_is_lambda_times_median_norm_from_the_generator() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, 20000, generator=g, dtype=torch.float64) + 1.0
    quiet = Flame(lam=0.0)(x, context(x)).aggregate
    a, b = (Flame(lam=0.01)(x, context(x, seed=5)) for _ in range(2))
    other = Flame(lam=0.01)(x, context(x, seed=6)).aggregate
    assert torch.equal(a.aggregate, b.aggregate) and not torch.equal(a.aggregate, other)
    sigma = float((a.aggregate - quiet).std())
    assert sigma == pytest.approx(0.01 * float(x.norm(dim=1).median()), rel=0.03)
    # HDBSCAN's cluster is a majority (it may leave honest noise points)
    assert a.info["admitted"] >= 5


def test_flame_rejects_a_sybil_minority_with_another_direction() -> None:
    g = torch.Generator().manual_seed(1)
    base = torch.randn(30, generator=g, dtype=torch.float64)
    honest = base + 0.1 * torch.randn(7, 30, generator=g, dtype=torch.float64)
    evil = -base + 0.1 * torch.randn(3, 30, generator=g, dtype=torch.float64)
    x = torch.cat([honest, evil])
    result = Flame(lam=0.0)(x, context(x, f=3))
    assert bool((result.weights[7:] == 0).all()) and int((result.weights[:7] > 0).sum()) >= 6


def test_flame_pays_its_scikit_learn_import_when_built() -> None:
    """HDBSCAN's import (~1.5 s) happens before round 1, not inside round 1's aggregation."""
    import subprocess
    import sys

    code = (
        "import sys; from fedpoison.aggregators.flame import Flame; "
        "assert 'sklearn.cluster' not in sys.modules; "
        "Flame(); assert 'sklearn.cluster' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
