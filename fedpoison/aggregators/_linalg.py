"""Overflow-safe norms, dot products and Gram matrices shared by the rules.

Inputs may hold rows as large as ±1e30 (or float32's maximum), which a plain float32 norm
or matmul turns into ``inf``. Every helper here returns finite results for finite input:

- norms and dot products take the fast path in the input's dtype and redo only the rows that
  overflowed or underflowed in float64 on rows scaled by their largest entry;
- Gram matrices are accumulated in float64 (the "work dtype"; float32 on MPS, which lacks
  float64) over column blocks, so no full float64 copy of the ``(n, d)`` matrix is made, and
  are scaled by the largest entry only when squares could overflow float64;
- Krum-type selection may start from a float32 draft of the Gram matrix (about one float32
  matmul) with a rounding bound per distance, and recompute in float64 only the rows whose
  rank the draft cannot settle (:class:`PairwiseSquaredDistances`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

from fedpoison.finite import all_finite

BLOCK_ELEMENTS = 1 << 21
"""Entries per column block of a Gram accumulation (16 MiB in float64: the reused buffer
stays in cache, which makes the copy and the centring nearly free)."""

DRAFT_BLOCK = 1 << 14
"""Columns per float32 block of :func:`draft_gram` (a block of 100 rows stays in cache)."""

DRAFT_EPS = 8.0 * torch.finfo(torch.float32).eps * DRAFT_BLOCK**0.5
"""Bound on the relative rounding of a draft distance, ``d_ij`` to ``DRAFT_EPS·(sq_i + sq_j)``:
float32 dot products over ``DRAFT_BLOCK`` terms (the same probabilistic 8·ε·√k bound as the
exact path's ε·√d)."""

DRAFT_UNDERFLOW = 4.0 * 2.0**-149
"""Absolute rounding per column of a draft distance when float32 products underflow."""


def work_dtype(x: torch.Tensor) -> torch.dtype:
    """float64 for the intermediate sums, except on devices without float64 (MPS)."""
    return torch.float32 if x.device.type == "mps" else torch.float64


def full_float32_products() -> bool:
    """Whether float32 matmuls run at full float32 precision (no TF32 or bf16 products)."""
    try:
        return torch.get_float32_matmul_precision() == "highest"
    except RuntimeError:  # precision set per backend with torch's newer API: assume reduced
        return False


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


def _overflow_scale(x: torch.Tensor, shift: torch.Tensor | None, dtype: torch.dtype) -> float:
    """1 when the squares of ``x + shift`` summed over a row cannot overflow ``dtype`` (always
    so for float32 input in float64: no pass over the data), else the largest |entry|."""
    d = max(x.shape[1], 1)
    limit = math.sqrt(torch.finfo(dtype).max / (4.0 * d))
    if torch.finfo(x.dtype).max <= limit / 2.0:
        return 1.0
    big = max_abs(x) + (0.0 if shift is None else max_abs(shift))
    return big if big > limit else 1.0


def _blocks(
    x: torch.Tensor,
    dtype: torch.dtype,
    shift: torch.Tensor | None = None,
    centre: bool = False,
    scale: float = 1.0,
) -> Iterator[torch.Tensor]:
    """Column blocks of ``(x + shift) / scale`` in ``dtype``, each centred on its column means
    if asked, written into one reused buffer (no page faults, no full copy of ``x``)."""
    n, d = x.shape
    step = min(d, max(1, BLOCK_ELEMENTS // max(n, 1)))
    buffer = torch.empty((n, step), dtype=dtype, device=x.device)
    average = torch.full((n,), 1.0 / n, dtype=dtype, device=x.device)
    for start in range(0, d, step):
        w = buffer[:, : min(step, d - start)]
        w.copy_(x[:, start : start + step])
        if shift is not None:
            w += shift[start : start + step].to(w)
        if centre:
            w -= average @ w  # the column means, as a matrix-vector product
        if scale != 1.0:
            w /= scale
        yield w


def gram(
    x: torch.Tensor, shift: torch.Tensor | None = None, centre: bool = False
) -> tuple[torch.Tensor, float]:
    """``(G, scale)``: the Gram matrix ``W Wᵀ / scale²`` of ``W = x + shift`` (each row shifted),
    optionally centred on the column means, accumulated in the work dtype over column blocks.

    ``scale`` is 1 unless the largest |entry| could overflow the squares, then that entry.
    """
    dtype = work_dtype(x)
    scale = _overflow_scale(x, shift, dtype)
    out = torch.zeros((x.shape[0], x.shape[0]), dtype=dtype, device=x.device)
    for w in _blocks(x, dtype, shift, centre, scale):
        out.addmm_(w, w.T)
    return out, scale


def draft_gram(x: torch.Tensor) -> torch.Tensor:
    """Gram matrix ``x xᵀ`` of a float32 ``x``: float32 products over column blocks of
    ``DRAFT_BLOCK`` columns (views, no copy), the blocks summed in the work dtype. It costs
    about one float32 matmul; its rounding is bounded by :data:`DRAFT_EPS` (may hold ``inf``
    when squares overflow float32). Not centred: see :class:`PairwiseSquaredDistances`."""
    out = torch.zeros((x.shape[0], x.shape[0]), dtype=work_dtype(x), device=x.device)
    for start in range(0, x.shape[1], DRAFT_BLOCK):
        block = x[:, start : start + DRAFT_BLOCK]
        out += block @ block.T
    return out


def gram_rows(x: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(G_rows, sq)`` in the work dtype for a float32 ``x`` (whose squares cannot overflow
    it): the Gram rows ``(len(rows), n)`` of ``rows`` and every row's squared norm ``(n,)``,
    in one pass over column blocks. Not centred (see :meth:`PairwiseSquaredDistances.refine`).
    """
    dtype = work_dtype(x)
    g = torch.zeros((len(rows), x.shape[0]), dtype=dtype, device=x.device)
    sq = torch.zeros(x.shape[0], dtype=dtype, device=x.device)
    for w in _blocks(x, dtype):
        sq += torch.linalg.vector_norm(w, dim=1).square()
        g.addmm_(w[rows], w.T)
    return g, sq


def cosine_matrix(x: torch.Tensor, shift: torch.Tensor | None = None) -> torch.Tensor:
    """Pairwise cosine similarities ``(n, n)`` of the rows of ``x + shift`` from one Gram
    matrix; a zero row has cosine 0 with every row, itself included."""
    g, _ = gram(x, shift)
    norms = g.diagonal().clamp_min(0.0).sqrt()
    norms = torch.where(norms > 0, norms, torch.ones_like(norms))
    return (g / norms[:, None] / norms[None, :]).clamp(-1.0, 1.0)


def _distances(
    g: torch.Tensor, sq: torch.Tensor, rows: torch.Tensor, eps: float, floor: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(d, tolerance)`` ``(len(rows), n)``: squared distances of ``rows`` to every row from
    their Gram rows ``g`` and all squared norms ``sq`` (``d_ij = sq_i + sq_j − 2 g_ij``, 0 to
    itself), and the rounding bound ``eps·(sq_i + sq_j) + floor`` of each."""
    both = sq[rows, None] + sq[None, :]
    dist = (both - 2.0 * g).clamp_min(0.0)
    dist[torch.arange(len(rows), device=dist.device), rows] = 0.0
    return dist, eps * both + floor


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

    ``draft=True`` (float32 input at the highest matmul precision) starts from the faster,
    uncentred :func:`draft_gram`, whose bound is ``DRAFT_EPS`` instead of ``ε``; a caller that
    cannot decide from the draft calls :meth:`refine` on the rows concerned, which recomputes
    their distances in the work dtype. Overflow, rows so small that float32 underflow
    dominates the bound, or rows far from the origin compared with their spread (the same
    ``RECENTRE`` test) fall back to the exact path at once. Refined rows are uncentred, so
    their bound is ``ε·(offset/spread)²`` rather than ``ε`` relative to a distance (at most
    ~``RECENTRE``/2 times the exact path's): two scores closer than that count as a tie
    there, a gap no real update matrix comes near.

    ``scaled`` holds the distances divided by ``scale²`` (selection compares these;
    :attr:`values` multiplies back); ``tolerance`` bounds the rounding of each entry and
    :meth:`errors` that of a sum of entries per row, so that scores equal in exact arithmetic
    count as ties (broken by the lowest index). ``exact`` marks the rows whose distances are
    all known to the exact path's precision.
    """

    RECENTRE = 1e3

    def __init__(self, updates: torch.Tensor, draft: bool = False) -> None:
        self._updates = updates
        self._eps = 8.0 * torch.finfo(work_dtype(updates)).eps * max(updates.shape[1], 1) ** 0.5
        n = updates.shape[0]
        if (
            draft
            and updates.dtype == torch.float32
            and work_dtype(updates) == torch.float64
            and full_float32_products()
        ):
            d = updates.shape[1]
            eps = DRAFT_EPS * min(1.0, d / DRAFT_BLOCK) ** 0.5  # blocks of min(d, DRAFT_BLOCK)
            floor = DRAFT_UNDERFLOW * d
            self._set(draft_gram(updates), 1.0, eps, floor)
            usable = (
                all_finite(self.scaled)
                and eps * float(self.sq.median()) >= floor  # underflow cannot hide an offset
                and not self._off_centre()
            )
            if usable:
                self.exact = torch.zeros(n, dtype=torch.bool, device=updates.device)
                return
        self._set(*gram(updates, centre=True), self._eps)
        if self._off_centre():
            central = int(torch.argmin(self.scaled.median(dim=1).values))
            self._set(*gram(updates, shift=-updates[central]), self._eps)
        self.exact = torch.ones(n, dtype=torch.bool, device=updates.device)

    def _off_centre(self) -> bool:
        """Whether the centre lies far outside the bulk of the rows (see the class doc)."""
        n = len(self.scaled)
        offdiag = self.scaled[~torch.eye(n, dtype=torch.bool, device=self.scaled.device)]
        return bool(offdiag.numel()) and float(self.sq.median()) > self.RECENTRE * float(
            offdiag.median()
        )

    def _set(self, g: torch.Tensor, scale: float, eps: float, floor: float = 0.0) -> None:
        self.scale = scale
        self.sq = g.diagonal().clone()
        rows = torch.arange(len(g), device=g.device)
        self.scaled, self.tolerance = _distances(g, self.sq, rows, eps, floor)

    def refine(self, rows: torch.Tensor) -> None:
        """Recompute the distances of the rows in the boolean mask ``rows`` (and, by symmetry,
        to them) in the work dtype, with the exact path's rounding bound.

        Like the draft, not centred: the draft is only kept when the rows lie within
        ``RECENTRE`` times their spread of the origin, where the work dtype's ``ε`` is still
        far below the draft's bound."""
        index = (rows & ~self.exact).nonzero().flatten()
        if len(index) == 0:
            return
        dist, tolerance = _distances(*gram_rows(self._updates, index), index, self._eps)
        for target, values in ((self.scaled, dist), (self.tolerance, tolerance)):
            target[index] = values
            target[:, index] = values.T
        self.exact[index] = True

    @property
    def values(self) -> torch.Tensor:
        """The squared distances themselves ``(n, n)``, in the work dtype."""
        return self.scaled * (self.scale * self.scale)

    def errors(self, rows: torch.Tensor) -> torch.Tensor:
        """Rounding bound ``(n,)`` of ``Σ_j scaled[i, rows[i, j]]`` for index rows ``(n, k)``."""
        return self.tolerance.gather(1, rows).sum(dim=1)


def clip_factors(diff: torch.Tensor, tau: float) -> torch.Tensor:
    """``min(1, τ/‖row‖)`` per row of ``diff`` in its dtype; a zero row gets 1."""
    norms = row_norms(diff)
    scale = torch.where(norms > tau, tau / norms.clamp_min(torch.finfo(norms.dtype).tiny), 1.0)
    return scale.to(diff.dtype)
