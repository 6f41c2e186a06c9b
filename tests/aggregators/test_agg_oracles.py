"""Oracle tests: naive loop transcriptions of each paper formula (docs/conventions.md
§C7–§C13, §C15), written here independently of the library, compared with the vectorised
rules — plus the goldens, and explicit checks that the popular WRONG conventions give
different answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import HDBSCAN

import fedpoison.aggregators as agg
from fedpoison.aggregators.base import RoundContext
from fedpoison.aggregators.dnc import DnC
from fedpoison.aggregators.flame import Flame
from fedpoison.aggregators.foolsgold import foolsgold_weights

# ----------------------------------------------------------------------------- naive oracles


def rows(x: torch.Tensor) -> list[list[float]]:
    return x.double().tolist()


def sqdist(a: list[float], b: list[float]) -> float:
    return sum((p - q) ** 2 for p, q in zip(a, b, strict=True))


def krum_scores_naive(
    pts: list[list[float]], f: int, neighbours: int | None = None, squared: bool = True
) -> list[float]:
    """score(i) = Σ of the ``n−f−2`` smallest (squared) distances to other rows."""
    n = len(pts)
    k = n - f - 2 if neighbours is None else neighbours
    scores = []
    for i in range(n):
        ds = sorted(
            sqdist(pts[i], pts[j]) if squared else math.sqrt(sqdist(pts[i], pts[j]))
            for j in range(n)
            if j != i
        )
        scores.append(sum(ds[:k]))
    return scores


def order(scores: list[float]) -> list[int]:
    """Indices by ascending score, ties → lowest index."""
    return sorted(range(len(scores)), key=lambda i: (scores[i], i))


def krum_naive(pts, f, **variant) -> list[float]:
    return pts[order(krum_scores_naive(pts, f, **variant))[0]]


def multi_krum_naive(pts, f, m=None, reduce: str = "mean") -> list[float]:
    m = len(pts) - f if m is None else m
    picked = [pts[i] for i in order(krum_scores_naive(pts, f))[:m]]
    total = [sum(col) for col in zip(*picked, strict=True)]
    return total if reduce == "sum" else [t / m for t in total]


def median_naive(pts, lower: bool = False) -> list[float]:
    out = []
    for col in zip(*pts, strict=True):
        s, n = sorted(col), len(col)
        out.append(
            s[n // 2] if n % 2 else (s[(n - 1) // 2] if lower else (s[n // 2 - 1] + s[n // 2]) / 2)
        )
    return out


def trimmed_mean_naive(pts, b) -> list[float]:
    out = []
    for col in zip(*pts, strict=True):
        kept = sorted(col)[b : len(col) - b]
        out.append(sum(kept) / len(kept))
    return out


def bulyan_naive(pts, f) -> list[float]:
    n = len(pts)
    theta, beta = n - 2 * f, n - 4 * f
    remaining, selected = list(range(n)), []
    while len(selected) < theta:
        sub = [pts[i] for i in remaining]
        k = max(1, len(remaining) - f - 2)
        pick = (
            remaining[order(krum_scores_naive(sub, f, neighbours=k))[0]]
            if len(sub) > 1
            else remaining[0]
        )
        selected.append(pick)
        remaining.remove(pick)
    out = []
    for col in zip(*[pts[i] for i in selected], strict=True):
        m = median_naive([[v] for v in col])[0]
        closest = sorted(col, key=lambda v: (abs(v - m), v))[:beta]
        out.append(sum(closest) / beta)
    return out


def weiszfeld_naive(pts, iters, nu, init) -> list[float]:
    n, d = len(pts), len(pts[0])
    z = [0.0] * d if init == "zero" else [sum(c) / n for c in zip(*pts, strict=True)]
    for _ in range(iters):
        betas = [(1 / n) / max(nu, math.sqrt(sqdist(z, p))) for p in pts]
        z = [sum(b * p[k] for b, p in zip(betas, pts, strict=True)) / sum(betas) for k in range(d)]
    return z


def centered_clipping_naive(pts, center, tau, iters) -> list[float]:
    v = list(center)
    for _ in range(iters):
        step = [0.0] * len(v)
        for p in pts:
            diff = [a - b for a, b in zip(p, v, strict=True)]
            norm = math.sqrt(sum(t * t for t in diff))
            scale = 1.0 if norm == 0 else min(1.0, tau / norm)
            step = [s + t * scale / len(pts) for s, t in zip(step, diff, strict=True)]
        v = [a + b for a, b in zip(v, step, strict=True)]
    return v


def fltrust_naive(pts, g0) -> list[float]:
    n0 = math.sqrt(sum(t * t for t in g0))
    total, acc = 0.0, [0.0] * len(g0)
    for p in pts:
        ni = math.sqrt(sum(t * t for t in p))
        cos = sum(a * b for a, b in zip(p, g0, strict=True)) / (ni * n0)
        ts = max(0.0, cos)
        total += ts
        acc = [a + ts * (n0 / ni) * t for a, t in zip(acc, p, strict=True)]
    return [a / total for a in acc]


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


# ----------------------------------------------------------------------------- data

seeds = st.integers(0, 2**31 - 1)


def normal(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64)


def close(a, b, tol: float = 1e-9) -> None:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


# ----------------------------------------------------------------------------- goldens

GOLDEN_KRUM = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [10.0, 10.0]])


def test_krum_golden() -> None:
    close(agg.krum_scores(GOLDEN_KRUM, 1), [2, 2, 2, 2, 343])
    assert agg.krum(GOLDEN_KRUM, 1).tolist() == [0.0, 0.0]  # a four-way tie → lowest index


def test_geometric_median_golden() -> None:
    x = torch.tensor([[1.0, 2, 3], [4, 5, 6], [7, 8, 9]])
    got = agg.geometric_median(x, iters=3, nu=0.1, init="zero")
    close(got, [3.7879, 4.7879, 5.7879], tol=1e-4)
    close(agg.geometric_median(x, iters=3, nu=0.1, init="mean"), [4, 5, 6], tol=1e-6)


def test_bulyan_sizes_n100_f20() -> None:
    """θ = 60 rows are selected, so the weights are 1/60 on 60 clients."""
    x = normal(100, 8, 0)
    result = agg.AGGREGATORS.get("bulyan")()(x, RoundContext(f=20, client_ids=tuple(range(100))))
    assert int((result.weights > 0).sum()) == 60
    close(result.weights[result.weights > 0], [1 / 60] * 60)
    close(result.aggregate, bulyan_naive(rows(x), 20))


# ----------------------------------------------------------------------------- wrong conventions


def test_krum_neighbour_count_matters() -> None:
    """n−f−1 neighbours (FLPoison, ByzFL) picks another row than the paper's n−f−2."""
    pts = [[2, 3], [2, 4], [5, 1], [4, 3], [3, 6]]
    spec, wrong = krum_naive(pts, 1), krum_naive(pts, 1, neighbours=5 - 1 - 1)
    assert spec != wrong
    assert agg.krum(torch.tensor(pts, dtype=torch.float64), 1).tolist() == spec


def test_krum_squared_distances_matter() -> None:
    """Non-squared distances (Fang's text, ALIE code) pick another row."""
    pts = [[1, 3], [5, 2], [5, 4], [0, 3], [3, 0]]
    spec, wrong = krum_naive(pts, 1), krum_naive(pts, 1, squared=False)
    assert spec != wrong
    assert agg.krum(torch.tensor(pts, dtype=torch.float64), 1).tolist() == spec


def test_median_is_not_the_lower_median() -> None:
    x = torch.tensor([[1.0], [2.0], [3.0], [10.0]])
    assert agg.median(x).tolist() == [2.5] == median_naive(rows(x))
    assert median_naive(rows(x), lower=True) == [2.0] == torch.median(x, dim=0).values.tolist()


def test_multi_krum_is_a_mean_not_a_sum() -> None:
    pts = rows(normal(9, 3, 1))
    spec, wrong = multi_krum_naive(pts, 2), multi_krum_naive(pts, 2, reduce="sum")
    assert not np.allclose(spec, wrong)
    close(agg.multi_krum(torch.tensor(pts, dtype=torch.float64), 2), spec)


def test_multi_krum_extremes() -> None:
    x = normal(9, 3, 2)
    close(agg.multi_krum(x, 2, m=1), agg.krum(x, 2))
    close(agg.multi_krum(x, 2, m=9), x.mean(0))


# ----------------------------------------------------------------------------- oracles


@settings(max_examples=40, deadline=None)
@given(f=st.integers(0, 3), extra=st.integers(0, 6), d=st.integers(1, 6), seed=seeds)
def test_krum_family_matches_oracle(f: int, extra: int, d: int, seed: int) -> None:
    n = 2 * f + 3 + extra
    x = normal(n, d, seed)
    pts = rows(x)
    close(agg.krum_scores(x, f), krum_scores_naive(pts, f))
    close(agg.krum(x, f), krum_naive(pts, f))
    close(agg.multi_krum(x, f), multi_krum_naive(pts, f))


@settings(max_examples=40, deadline=None)
@given(
    x=st.integers(1, 9).flatmap(
        lambda n: st.lists(
            st.lists(st.integers(-5, 5).map(float), min_size=3, max_size=3), min_size=n, max_size=n
        )
    )
)
def test_coordinate_rules_match_oracle_with_ties(x: list[list[float]]) -> None:
    """Small integer grids: many ties, which coordinate-wise rules must not care about."""
    t = torch.tensor(x, dtype=torch.float64)
    close(agg.median(t), median_naive(x))
    close(agg.median(t), np.median(np.array(x), axis=0))
    for b in range((len(x) - 1) // 2 + 1):
        close(agg.trimmed_mean(t, b), trimmed_mean_naive(x, b))


@settings(max_examples=30, deadline=None)
@given(f=st.integers(0, 2), extra=st.integers(0, 5), d=st.integers(1, 5), seed=seeds)
def test_bulyan_matches_oracle(f: int, extra: int, d: int, seed: int) -> None:
    n = 4 * f + 3 + extra
    x = normal(n, d, seed)
    close(agg.bulyan(x, f), bulyan_naive(rows(x), f))


def test_bulyan_closest_to_median_ties_keep_smaller_values() -> None:
    """f=1, n=7, θ=5, β=1 ... in one coordinate {0, 1, 2, 3, 4} around median 2 with β=1 is
    unambiguous; with values {0, 1, 3, 4} the tie between 1 and 3 keeps 1."""
    pts = [[0.0], [1.0], [3.0], [4.0], [100.0], [-100.0], [2.0]]
    close(agg.bulyan(torch.tensor(pts, dtype=torch.float64), 1), bulyan_naive(pts, 1))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 8), d=st.integers(1, 5), seed=seeds, iters=st.integers(0, 4))
def test_geometric_median_matches_oracle(n: int, d: int, seed: int, iters: int) -> None:
    x = normal(n, d, seed)
    for init in ("mean", "zero"):
        close(
            agg.geometric_median(x, iters=iters, nu=0.1, init=init),
            weiszfeld_naive(rows(x), iters, 0.1, init),
        )


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(1, 8),
    d=st.integers(1, 5),
    seed=seeds,
    tau=st.floats(0.1, 5),
    iters=st.integers(1, 3),
)
def test_centered_clipping_matches_oracle(
    n: int, d: int, seed: int, tau: float, iters: int
) -> None:
    x = normal(n + 1, d, seed)
    center, pts = x[0], x[1:]
    got = agg.centered_clipping(pts, center, tau=tau, iters=iters)
    close(got, centered_clipping_naive(rows(pts), center.tolist(), tau, iters))


def test_centered_clipping_zero_distance_scale_is_one() -> None:
    x = torch.tensor([[1.0, 2.0], [1.0, 2.0]])
    assert agg.centered_clipping(x, torch.tensor([1.0, 2.0]), tau=0.5).tolist() == [1.0, 2.0]


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 8), d=st.integers(2, 5), seed=seeds)
def test_fltrust_matches_oracle(n: int, d: int, seed: int) -> None:
    x = normal(n + 1, d, seed)
    g0, pts = x[0], x[1:]
    trusted = any(float(p @ g0) > 0 for p in pts)
    got = agg.fltrust(pts, g0)
    if trusted:
        close(got, fltrust_naive(rows(pts), g0.tolist()))
    else:
        assert got.abs().max() == 0


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


def test_bulyan_one_neighbour_ties() -> None:
    """n=7, f=1: the last selection step has R = {4, 5, 6} and one neighbour, so the mutual
    nearest neighbours 4 (at 50) and 5 (at 60) tie and the lower index is taken (the edge
    case of docs/conventions.md §C10)."""
    pts = [[0.0], [1.0], [2.0], [3.0], [50.0], [60.0], [4.0]]
    x = torch.tensor(pts, dtype=torch.float64)
    chosen = agg.AGGREGATORS.get("bulyan")()(x, RoundContext(f=1, client_ids=tuple(range(7))))
    close(agg.bulyan(x, 1), bulyan_naive(pts, 1))
    assert torch.nonzero(chosen.weights).flatten().tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_krum_resolves_inliers_next_to_a_huge_row(dtype: torch.dtype) -> None:
    """A ±1e30 row drags the column mean far from the honest rows; the distances are then
    recomputed about the most central row, so Krum still finds the best inlier (not merely
    the lowest-index one)."""
    x = normal(9, 5, 0)
    x[0] = 1e30
    pts = rows(x.to(dtype))
    spec = krum_naive(pts, 1)
    assert spec != pts[1]  # the best inlier is not simply the first one
    assert agg.krum(x.to(dtype), 1).double().tolist() == spec
    close(agg.multi_krum(x, 1, m=4), multi_krum_naive(rows(x), 1, m=4))
    close(agg.bulyan(x, 1), bulyan_naive(rows(x), 1))
