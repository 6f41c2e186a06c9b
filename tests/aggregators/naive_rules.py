"""Naive loop transcriptions of the paper formulas shared by several rules' oracle tests
(docs/conventions.md §C7–§C10: Krum, Multi-Krum, Bulyan, the median), written independently of the
library, and the data helpers of the oracle tests."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import strategies as st

seeds = st.integers(0, 2**31 - 1)
grids = st.integers(1, 9).flatmap(
    lambda n: st.lists(
        st.lists(st.integers(-5, 5).map(float), min_size=3, max_size=3), min_size=n, max_size=n
    )
)
"""Small integer grids ``(n ≤ 9, 3)``: many ties, which coordinate-wise rules must not mind."""


def rows(x: torch.Tensor) -> list[list[float]]:
    return x.double().tolist()


def normal(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64)


def close(a, b, tol: float = 1e-9) -> None:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


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
