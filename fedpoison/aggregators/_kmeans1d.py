"""Exact k-means in one dimension, and the gap statistic built on it (FLDetector's decision).

On a line the optimal k-means partition is a set of contiguous runs of the sorted values, so
dynamic programming finds the global optimum (Wang & Song 2011, Ckmeans.1d.dp) in
``O(k·m²)``: no random restarts, and the same answer on every machine. Lloyd's algorithm
(scikit-learn's ``KMeans``, which the FLDetector code calls) approximates the same optimum.
"""

from __future__ import annotations

import math

import numpy as np


def _sse_table(x: np.ndarray) -> np.ndarray:
    """``c[i, j]`` = within-run sum of squares of ``x[i..j]`` (sorted ``x``), ``inf`` below
    the diagonal."""
    s1 = np.concatenate([[0.0], np.cumsum(x)])
    s2 = np.concatenate([[0.0], np.cumsum(x * x)])
    i = np.arange(len(x))[:, None]
    j = np.arange(len(x))[None, :]
    count = (j - i + 1).astype(np.float64)
    total = s1[j + 1] - s1[i]
    with np.errstate(invalid="ignore", divide="ignore"):
        cost = (s2[j + 1] - s2[i]) - total * total / count
    return np.where(j >= i, np.maximum(cost, 0.0), np.inf)


def kmeans_1d(x: np.ndarray, k: int) -> tuple[float, np.ndarray]:
    """``(W_k, labels)``: the optimal within-cluster sum of **squared** distances of ``x``
    ``(m,)`` into ``k ≤ m`` clusters, and each value's cluster (0 = lowest values)."""
    m = len(x)
    if not 1 <= k <= m:
        raise ValueError(f"kmeans_1d: needs 1 ≤ k ≤ m, got k={k}, m={m}")
    order = np.argsort(x, kind="stable")
    xs = np.asarray(x, dtype=np.float64)[order]
    cost = _sse_table(xs)
    best = cost[0].copy()  # best[j]: x[0..j] in one cluster
    starts = []
    for _ in range(1, k):
        # candidate: x[0..i−1] in the clusters so far, x[i..j] in a new one
        total = np.concatenate([[np.inf], best[:-1]])[:, None] + cost
        starts.append(np.argmin(total, axis=0))
        best = total.min(axis=0)
    labels_sorted = np.zeros(m, dtype=np.int64)
    j = m - 1
    for c in range(k - 1, 0, -1):
        i = int(starts[c - 1][j])
        labels_sorted[i : j + 1] = c
        j = i - 1
    labels = np.empty(m, dtype=np.int64)
    labels[order] = labels_sorted
    return float(best[m - 1]), labels


def gap_statistic(
    x: np.ndarray, references: np.ndarray, k_max: int = 7, log_of_mean: bool = False
) -> int:
    """The number of clusters the gap statistic picks (Tibshirani, Walther & Hastie 2001).

    ``x`` ``(m,)`` is min-max normalised to [0, 1] and compared with the ``B`` reference sets
    ``references`` ``(B, m)`` drawn from U[0, 1]: ``Gap(k) = mean_b log W*_kb − log W_k``
    (``log_of_mean``: ``log mean_b W*_kb − log W_k``, as the FLDetector code), ``s_k =
    √(1 + 1/B)·std_b log W*_kb``; the first ``k`` with ``Gap(k) − Gap(k+1) + s_{k+1} ≥ 0``,
    else ``K = min(k_max, m − 1)`` (Tibshirani's rule; the FLDetector code fails there).
    ``W`` below 1e-12 counts as 1e-12. All-equal values give 1.
    """
    m = len(x)
    big = min(k_max, m - 1)
    lo, hi = float(np.min(x)), float(np.max(x))
    if big < 2 or hi - lo <= 0:
        return 1
    z = (np.asarray(x, dtype=np.float64) - lo) / (hi - lo)
    b = len(references)
    gaps, spread = [], []
    for k in range(1, big + 1):
        log_w = math.log(max(kmeans_1d(z, k)[0], 1e-12))
        ref = np.array([max(kmeans_1d(r, k)[0], 1e-12) for r in references])
        expected = math.log(ref.mean()) if log_of_mean else float(np.log(ref).mean())
        gaps.append(expected - log_w)
        spread.append(math.sqrt(1.0 + 1.0 / b) * float(np.log(ref).std()))
    for k in range(1, big):
        if gaps[k - 1] - gaps[k] + spread[k] >= 0:
            return k
    return big
