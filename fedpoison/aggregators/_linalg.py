"""Overflow-safe norms, dot products and Gram matrices shared by the rules.

Inputs may hold rows as large as ±1e30 (or float32's maximum), which a plain float32 norm
or matmul turns into ``inf``. Every helper here returns finite results for finite input:

- norms and dot products take the fast path in the input's dtype and redo only the rows that
  overflowed or underflowed in float64 on rows scaled by their largest entry;
- Gram matrices are accumulated in float64 (the "work dtype"; float32 on MPS, which lacks
  float64) over column blocks, so no full float64 copy of the ``(n, d)`` matrix is made, and
  are scaled by the largest entry only when squares could overflow float64.
"""

from __future__ import annotations

import math

import torch

BLOCK_ELEMENTS = 1 << 24
"""Entries per column block of a Gram accumulation (128 MiB in float64)."""


def work_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 for the intermediate sums, except on devices without float64 (MPS)."""
    return torch.float32 if x.device.type == "mps" else torch.float64


def max_abs(x: torch.Tensor) -> float:
    """Largest |entry| (0 for an empty tensor), without an ``abs`` copy."""
    if x.numel() == 0:
        return 0.0
    lo, hi = torch.aminmax(x)
    return max(-float(lo), float(hi))


def _scaled_rows(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x / s_i, s_i)`` in the work dtype with ``s_i`` = the row's largest |entry|."""
    w = x.to(work_dtype(x))
    scale = w.abs().amax(dim=1).clamp_min(torch.finfo(w.dtype).tiny)
    return w / scale[:, None], scale


def _safe(values: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Rows whose fast-path value neither overflowed nor lost precision to underflow."""
    tiny = math.sqrt(torch.finfo(dtype).tiny) * 1e4
    return torch.isfinite(values) & ((values.abs() >= tiny) | (values == 0))


def row_norms(x: torch.Tensor) -> torch.Tensor:
    """L2 norm of each row ``(n,)`` in the work dtype, finite for any finite input."""
    norms = torch.linalg.vector_norm(x, dim=1)
    redo = ~_safe(norms, x.dtype) | (norms == 0)
    norms = norms.to(work_dtype(x))
    if bool(redo.any()):
        w, scale = _scaled_rows(x[redo])
        norms[redo] = torch.linalg.vector_norm(w, dim=1) * scale
    return norms


def row_dots(x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``x @ v`` ``(n,)`` in the work dtype, finite for any finite input."""
    dots = x @ v.to(x)
    redo = ~_safe(dots, x.dtype)
    dots = dots.to(work_dtype(x))
    if bool(redo.any()):
        w, scale = _scaled_rows(x[redo])
        u, s = _scaled_rows(v.reshape(1, -1))
        dots[redo] = (w @ u[0]) * scale * s[0]
    return dots


def gram(
    x: torch.Tensor, shift: torch.Tensor | None = None, centre: bool = False
) -> tuple[torch.Tensor, float]:
    """``(G, scale)``: the Gram matrix ``W Wᵀ / scale²`` of ``W = x + shift`` (each row shifted),
    optionally centred on the column means, accumulated in the work dtype over column blocks.

    ``scale`` is 1 unless the largest |entry| could overflow the squares, then that entry.
    """
    n, d = x.shape
    dtype = work_dtype(x)
    big = max_abs(x) + (0.0 if shift is None else max_abs(shift))
    limit = math.sqrt(torch.finfo(dtype).max / (4.0 * max(d, 1)))
    scale = big if big > limit else 1.0
    out = torch.zeros((n, n), dtype=dtype, device=x.device)
    step = min(d, max(1, BLOCK_ELEMENTS // max(n, 1)))
    buffer = torch.empty((n, step), dtype=dtype, device=x.device)  # reused: no page faults
    average = torch.full((n,), 1.0 / n, dtype=dtype, device=x.device)
    for start in range(0, d, step):  # column blocks bound the float64 working memory
        w = buffer[:, : min(step, d - start)]
        w.copy_(x[:, start : start + step])
        if shift is not None:
            w += shift[start : start + step].to(w)
        if centre:
            w -= average @ w  # the column means, as a matrix-vector product
        if scale != 1.0:
            w /= scale
        out.addmm_(w, w.T)
    return out, scale


def cosine_matrix(x: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
    """Pairwise cosine similarities ``(n, n)`` of the rows of ``x + shift`` from one Gram
    matrix; a zero row has cosine 0 with every row, itself included."""
    g, _ = gram(x, shift)
    norms = g.diagonal().clamp_min(0.0).sqrt()
    norms = torch.where(norms > 0, norms, torch.ones_like(norms))
    return (g / norms[:, None] / norms[None, :]).clamp(-1.0, 1.0)


class PairwiseSquaredDistances:
    """All ``‖g_i − g_j‖²`` from ONE Gram matrix of centred rows (:func:`gram`).

    Distances are translation invariant; centring removes the cancellation a common offset
    would cause. The rounding error of ``d_ij`` is about ``ε·(sq_i + sq_j)`` with ``sq_i`` the
    squared distance of row i to the centre, so the centre must lie in the bulk of the rows.
    The column mean does, unless a few rows are huge (an attacker sending ±1e30): then the
    mean sits far from the honest rows and their mutual distances drown in rounding. In that
    case — the median squared norm about the centre exceeds ``RECENTRE`` times the median
    distance — the Gram matrix is recomputed about the most central row (smallest median
    distance to the others).

    ``scaled`` holds the distances divided by ``scale²`` (selection compares these;
    :attr:`values` multiplies back); :meth:`errors` bounds the rounding of a sum of
    distances per row, so that scores equal in exact arithmetic count as ties (broken by the
    lowest index).
    """

    RECENTRE = 1e3

    def __init__(self, updates: torch.Tensor) -> None:
        self._eps = 8.0 * torch.finfo(work_dtype(updates)).eps * max(updates.shape[1], 1) ** 0.5
        self._set(*gram(updates, centre=True))
        offdiag = self.scaled[
            ~torch.eye(len(self.scaled), dtype=torch.bool, device=self.scaled.device)
        ]
        if offdiag.numel() and float(self.sq.median()) > self.RECENTRE * float(offdiag.median()):
            central = int(torch.argmin(self.scaled.median(dim=1).values))
            self._set(*gram(updates, shift=-updates[central]))

    def _set(self, g: torch.Tensor, scale: float) -> None:
        self.scale = scale
        self.sq = g.diagonal().clone()
        dist = (self.sq[:, None] + self.sq[None, :] - 2.0 * g).clamp_min(0.0)
        dist.fill_diagonal_(0.0)
        self.scaled = dist

    @property
    def values(self) -> torch.Tensor:
        """The squared distances themselves ``(n, n)``, in the work dtype."""
        return self.scaled * (self.scale * self.scale)

    def errors(self, rows: torch.Tensor) -> torch.Tensor:
        """Rounding bound ``(n,)`` of ``Σ_j scaled[i, rows[i, j]]`` for index rows ``(n, k)``."""
        return self._eps * (rows.shape[1] * self.sq + self.sq[rows].sum(dim=1))
