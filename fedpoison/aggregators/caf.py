"""CAF — covariance-bound agnostic filter (Allouah, Guerraoui & Stephan, ICML 2025, "Towards
Trustworthy Federated Learning with Untrusted Participants"; ByzFL's docstring and code, the
authors' group; REFERENCES D21 — the paper itself is unverified there).

1. ``c_i = 1`` for every row.
2. While ``Σ c_i > n − 2f``: ``μ_c = Σ c_i g_i / Σ c_i``;
   ``Σ_c = Σ c_i (g_i − μ_c)(g_i − μ_c)ᵀ / Σ c_i``; ``(λ, v)`` = its top eigenpair; remember
   ``μ_c`` if ``λ`` is the smallest so far; ``τ_i = ((g_i − μ_c)ᵀ v)²``;
   ``c_i ← c_i (1 − τ_i / max_j τ_j)``.
3. Return the remembered ``μ_c``.

Requires ``n ≥ 2f+1``. Conventions:

- The eigenpair is exact (default): with ``w = c/Σc``, ``P = I − 1wᵀ`` and ``G`` the Gram
  matrix of the rows, ``Σ_c``'s nonzero spectrum is that of ``√w ⊙ (P G Pᵀ) ⊙ √wᵀ`` (n×n), and
  the projections ``(g_i − μ_c)ᵀ v`` follow from its eigenvector. So one centred float64 Gram
  matrix (:func:`gram`) is the only pass over ``d``; the loop is n×n algebra and the output is
  one matrix-vector product. ``power_iters=p`` is ByzFL's variant instead (REFERENCES
  Conventions 7): ``p`` power steps from a random unit vector (ByzFL: ``p = 1``, unseeded; here
  drawn from ``ctx.generator``), with ``λ = ‖Σ_c v‖`` at the last step (byzpy: 3 steps, seed 0,
  a Rayleigh quotient). It draws its starts as ByzFL does, one ``randn(d)`` per iteration:
  with ``power_iters=1`` and ``ctx.generator`` seeded as ByzFL's global torch generator, the
  two agree to float32 round-off (docs/aggregators.md).
- ``max_j τ_j`` is taken over the rows still weighted (``c_j > 0``), so every iteration zeroes
  at least one weight and the loop ends within ``n`` iterations; REFERENCES writes the max
  over all ``j``, which is the same whenever an active row attains it (as in its goldens).
- ``f = 0``: the loop never runs and the result is the plain mean (ByzFL returns ``None``;
  byzpy starts from the mean). ``λ = 0`` or ``τ_max = 0`` (the weighted rows coincide): stop
  and keep the best ``μ_c`` (ByzFL divides 0/0 there; byzpy stops).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.aggregators._common import check_f, check_updates, require
from fedpoison.aggregators._linalg import gram, row_dots
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext


def check_caf(rule: str, n: int, f: int) -> None:
    """CAF's precondition ``n ≥ 2f+1``."""
    check_f(rule, n, f, n >= 2 * f + 1, f"n ≥ 2f+1 = {2 * f + 1}")


def _top_pair(m: torch.Tensor, w: torch.Tensor) -> tuple[float, torch.Tensor]:
    """``(λ, z)`` of the exact top eigenpair of ``Σ_c``, its eigenvector ``v = Yᵀ z``."""
    root = w.sqrt()
    k = root[:, None] * m * root[None, :]
    values, vectors = torch.linalg.eigh(0.5 * (k + k.T))
    lam = float(values[-1])
    return lam, root * vectors[:, -1] / max(lam, torch.finfo(m.dtype).tiny) ** 0.5


def _power_pair(
    m: torch.Tensor, w: torch.Tensor, start: torch.Tensor, steps: int
) -> tuple[float, torch.Tensor]:
    """``(λ, z)`` after ``steps`` power steps from the unit vector whose centred projections
    ``Y v₀`` are ``start``: ``λ = ‖Σ_c v‖`` at the last step, ``v = Yᵀ z``."""
    b = w * start
    lam, z = 0.0, torch.zeros_like(b)
    for step in range(steps):
        b = w * (m @ z) if step else b
        lam = max(float(b @ m @ b), 0.0) ** 0.5
        if lam == 0.0:
            break
        z = b / lam
    return lam, z


def caf_weights(
    updates: torch.Tensor,
    f: int,
    power_iters: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Weights ``(n,)`` of the returned ``μ_c = weights @ updates``: ``c/Σc`` of the iteration
    with the smallest ``λ`` (0 = filtered out)."""
    n = check_updates(updates, "caf")
    check_caf("caf", n, f)
    g, scale = gram(updates, centre=True)
    c = torch.ones(n, dtype=g.dtype, device=g.device)
    best, best_lam = c / n, float("inf")
    while float(c.sum()) > n - 2 * f:
        w = c / c.sum()
        p = torch.eye(n, dtype=g.dtype, device=g.device) - w[None, :]  # rows − μ_c = P X
        m = p @ g @ p.T
        if power_iters is None:
            lam, z = _top_pair(m, w)
        else:
            gen = require(generator, "caf", "ctx.generator (power_iters draws its start)")
            v = torch.randn(updates.shape[1], generator=gen, device=gen.device)
            v = v.to(device=updates.device, dtype=updates.dtype)
            lam, z = _power_pair(m, w, p @ (row_dots(updates, v / v.norm()) / scale), power_iters)
        if lam < best_lam:
            best, best_lam = w, lam
        tau = (m @ z).square()
        top = float(tau[c > 0].max())
        if lam <= 0.0 or not top > 0.0:
            break
        c = c * (1.0 - tau / top).clamp_min(0.0)
    return best.to(updates.dtype)


def caf(updates: torch.Tensor, f: int) -> torch.Tensor:
    """CAF aggregate ``(d,)`` with the exact top eigenpair (REFERENCES D21).

    Example (D21's hand computation): the outlier is filtered in the first iteration, then the
    two rows along (1, −1); the weights are not uniform, so the result is not (1/3, 1/3).

        >>> import torch
        >>> from fedpoison.aggregators import caf
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [10.0, 10.0]])
        >>> [round(v, 4) for v in caf(x, f=1).tolist()]
        [0.3393, 0.3393]
    """
    return caf_weights(updates, f) @ updates


@AGGREGATORS.register("caf")
class CAF(Aggregator):
    """CAF; weights are the filter's ``c/Σc`` at the returned iteration (0 = filtered out).

    Args:
        power_iters: ``None`` (default) = the exact top eigenpair; ``p`` = ByzFL's power-step
            variant with ``p`` steps from a random start drawn from ``ctx.generator``.
    """

    paper: ClassVar[str] = "Allouah et al. 2025 (ICML)"
    requirement: ClassVar[str] = "n ≥ 2f+1"
    translation_equivariant: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    rejects_far_rows: ClassVar[bool] = True
    aggregate_is_weighted_sum: ClassVar[bool] = True

    def __init__(self, power_iters: int | None = None) -> None:
        if power_iters is not None and power_iters < 1:
            raise ValueError(f"{self.name}: power_iters must be ≥ 1 or null, got {power_iters}")
        self.power_iters = power_iters

    def check(self, n: int, f: int) -> None:
        check_caf(self.name, n, f)

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        weights = caf_weights(updates, ctx.f, self.power_iters, ctx.generator)
        return AggregationResult(weights @ updates, weights)
