"""SignGuard (Xu et al. 2022; official code): the shared rule checks (MeanShift and DBSCAN), a
naive transcription with scikit-learn's clustering on the same block, the paper's
deterministic parts, the block drawn from the generator, and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close, seeds
from rule_tester import RuleTester, context
from sklearn.cluster import DBSCAN, MeanShift, estimate_bandwidth

from fedpoison.aggregators import SignGuard, signguard
from fedpoison.aggregators.signguard import norm_filter, sign_features


def clipped_honest_box(x: torch.Tensor, honest: torch.Tensor):
    """The honest rows' box widened by the same rows clipped to the median norm of all rows."""
    s = float(np.median(x.norm(dim=1).numpy()))
    clipped = honest * (s / honest.norm(dim=1)).clamp(max=1.0)[:, None]
    both = torch.cat([honest, clipped])
    return both.min(dim=0).values, both.max(dim=0).values, 1e-9


class TestSignGuard(RuleTester):
    rule = SignGuard

    def honest_box(self, x, honest):
        return clipped_honest_box(x, honest)


class TestSignGuardDBSCAN(RuleTester):
    rule = SignGuard
    params = {"clustering": "dbscan"}

    def honest_box(self, x, honest):
        return clipped_honest_box(x, honest)


# ---------------------------------------------------------------------------- naive oracle
def block_start(d: int, k: int, seed: int) -> int:
    """The block start the rule draws first from a generator seeded with ``seed``."""
    g = torch.Generator().manual_seed(seed)
    return int(torch.randint(0, max(d - k, 1), (1,), generator=g))


def signguard_naive(x: list[list[float]], start: int, k: int, dbscan: bool = False):
    norms = [math.sqrt(sum(v * v for v in row)) for row in x]
    med = float(np.median(norms))
    s1 = {i for i, r in enumerate(norms) if 0.1 * med < r < 3.0 * med}
    fractions = []
    for row in x:
        block = row[start : start + k]
        fractions.append(
            [
                sum(v > 0 for v in block) / k,
                sum(v == 0 for v in block) / k,
                sum(v < 0 for v in block) / k,
            ]
        )
    top = [max(f[j] for f in fractions) for j in range(3)]
    feats = np.array([[f[j] / (top[j] + 1e-8) for j in range(3)] for f in fractions])
    if dbscan:
        labels = DBSCAN(eps=0.05, min_samples=2).fit(feats).labels_
    else:
        bandwidth = estimate_bandwidth(feats, quantile=0.5, n_samples=50)
        if bandwidth > 0:
            labels = MeanShift(bandwidth=bandwidth, bin_seeding=True, cluster_all=False)
            labels = labels.fit(feats).labels_
        else:  # the largest group of identical features (the rule's documented limit)
            keys = sorted({tuple(f) for f in feats.tolist()})
            sizes = [sum(tuple(f) == key for f in feats.tolist()) for key in keys]
            best = keys[sizes.index(max(sizes))]
            labels = np.array([0 if tuple(f) == best else -1 for f in feats.tolist()])
    counts = [int(np.sum(labels == c)) for c in range(labels.max() + 1)]
    tied = [c for c, size in enumerate(counts) if size == max(counts, default=-1)]
    if dbscan and len(tied) > 1:  # DBSCAN ties: the cluster of the smallest feature row
        rows = list(zip(feats.tolist(), labels.tolist(), strict=True))
        tied.sort(key=lambda c: min(tuple(f) for f, lab in rows if lab == c))
    s2 = {i for i, lab in enumerate(labels) if tied and lab == tied[0]}
    kept = sorted(s1 & s2)
    out = [0.0] * len(x[0])
    for i in kept:
        scale = min(norms[i], med) / norms[i] if norms[i] > 0 else 1.0
        out = [o + scale * v / len(kept) for o, v in zip(out, x[i], strict=True)]
    return out, kept


def mixed_round(n: int, d: int, seed: int) -> torch.Tensor:
    """Honest rows sharing a direction, a few sign-flipped and a few rescaled rows."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(d, generator=g, dtype=torch.float64)
    x = base + 0.8 * torch.randn(n, d, generator=g, dtype=torch.float64)
    x[: n // 5] *= -1.0
    x[n // 5 : n // 5 + 1] *= 5.0
    return x


@settings(max_examples=25, deadline=None)
@given(n=st.integers(3, 16), d=st.integers(40, 300), seed=seeds, dbscan=st.booleans())
def test_signguard_matches_the_naive_transcription(n: int, d: int, seed: int, dbscan: bool):
    x = mixed_round(n, d, seed)
    k = max(1, int(0.1 * d))
    want, kept = signguard_naive(x.tolist(), block_start(d, k, seed), k, dbscan)
    rule = SignGuard(clustering="dbscan" if dbscan else "meanshift")
    got = rule(x, context(x, f=0, seed=seed))
    assert torch.nonzero(got.weights).flatten().tolist() == kept
    close(got.aggregate, want)
    if kept:
        close(got.weights[kept], [1.0 / len(kept)] * len(kept))


def test_norm_filter_removes_rows_outside_a_tenth_and_thrice_the_median() -> None:
    norms = torch.tensor([1.0, 1, 1, 1, 10, 0.05], dtype=torch.float64)
    mask, bound = norm_filter(norms, 0.1, 3.0)
    assert bound == 1.0 and mask.tolist() == [True, True, True, True, False, False]
    even, bound = norm_filter(torch.tensor([1.0, 2.0, 4.0, 8.0]), 0.1, 3.0)
    assert bound == 3.0  # midpoint of 2 and 4 for even n (torch.median would take 2)


def test_zero_row_features_and_normalisation() -> None:
    x = torch.tensor([[0.0, 0.0, 0.0, 0.0], [1.0, -1.0, 2.0, 0.0], [1.0, 1.0, -1.0, -1.0]])
    feats = sign_features(x, 0, 4)
    torch.testing.assert_close(feats[0], torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))
    # positives 0, 0.5, 0.5 → divided by 0.5; zeros 1, 0.25, 0 → by 1; negatives 0, 0.25, 0.5
    torch.testing.assert_close(feats[1], torch.tensor([1.0, 0.25, 0.5], dtype=torch.float64))


def test_clipping_never_exceeds_the_median_norm() -> None:
    @settings(max_examples=20, deadline=None)
    @given(n=st.integers(3, 14), d=st.integers(10, 80), seed=seeds)
    def check(n: int, d: int, seed: int) -> None:
        x = mixed_round(n, d, seed)
        result = SignGuard()(x, context(x, seed=seed))
        bound = float(np.median(x.norm(dim=1).numpy()))
        assert float(result.aggregate.norm()) <= bound * (1 + 1e-12)
        kept = result.weights > 0
        assert bool(torch.all(result.weights[kept] == 1.0 / max(int(kept.sum()), 1)))

    check()


def test_sign_flipped_minority_is_rejected_and_counted() -> None:
    g = torch.Generator().manual_seed(5)
    base = torch.rand(200, generator=g, dtype=torch.float64) + 0.5
    honest = base + 0.2 * torch.randn(8, 200, generator=g, dtype=torch.float64)
    x = torch.cat([-honest[:3], honest])  # same norms, opposite signs
    result = SignGuard()(x, context(x, f=3))
    assert result.rejected[:3].all() and not result.rejected[3:].any()
    assert result.info == {"kept": 8.0}


def test_block_comes_from_the_generator() -> None:
    """A row positive on its first half only: which block is drawn decides its features."""
    d = 100
    x = torch.ones(9, d, dtype=torch.float64)
    x[0, 50:] = -1.0
    kept = set()
    for seed in range(20):
        start = block_start(d, 10, seed)
        result = signguard(x, torch.Generator().manual_seed(seed))[1]
        assert bool(result[0]) == (start + 10 <= 50)
        kept.add(bool(result[0]))
    assert kept == {True, False}


def test_nobody_kept_gives_a_skipped_zero_round() -> None:
    x = torch.zeros(5, 4)
    result = SignGuard()(x, context(x))
    assert torch.equal(result.aggregate, torch.zeros(4)) and result.info["skipped"] == 1.0
    assert bool((result.weights == 0).all())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"clustering": "kmeans"}, "clustering must be meanshift|dbscan"),
        ({"lower": 3.0, "upper": 1.0}, "needs 0 ≤ lower < upper"),
        ({"fraction": 0.0}, r"fraction must be in \(0, 1\]"),
    ],
)
def test_constructor_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"signguard: {message}"):
        SignGuard(**kwargs)
