"""Pre-aggregators: row transforms composable with any rule (``defense.pre``).

Each maps the ``(n, d)`` updates to ``(k, d)`` mixed rows and returns the ``(k, n)`` mixing
matrix with ``mixed == mixing @ updates``, so the rule's weights over mixed rows map back to
clients as ``mixing.T @ rule_weights`` (see :class:`fedpoison.aggregators.pipeline.Defense`).

- ``nnm`` — Nearest Neighbor Mixing (Allouah et al., AISTATS 2023, Alg. 1): row i becomes
  the mean of its ``n−f`` nearest rows, itself included (squared distances, one Gram matrix;
  equal distances → lower index). Needs ``n ≥ 2f+1``. ByzFL's ``NNM`` (Euclidean distances,
  the same neighbours) gathers an ``(n, n−f, d)`` copy of the rows, 32 GB at n = 100,
  d = 10⁶; the mixing matrix here copies none.
- ``bucketing`` — Karimireddy, He & Jaggi, ICLR 2022, Alg. 1: a random permutation (from
  ``ctx.generator``) split into ``⌈n/s⌉`` buckets of ``s`` consecutive rows (the last one may
  be smaller); each bucket is replaced by its mean. A Byzantine row spoils at most one
  bucket, so the rule is told ``f' = min(f, ⌈n/s⌉)`` — the worst case, which is what the
  paper's (sδ)-robustness requirement amounts to (``sδ·n/s = f``). ByzFL's ``Bucketing``
  (default ``s = 1``, a no-op) takes the same ``torch.randperm`` from torch's global
  generator: seeded alike, both form the same buckets (docs/aggregators.md).
- ``clip`` — static norm clipping: each row scaled to L2 norm at most ``max_norm``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import torch

from fedpoison.aggregators._common import check_f, check_updates, require
from fedpoison.aggregators._linalg import PairwiseSquaredDistances, clip_factors
from fedpoison.aggregators.base import RoundContext
from fedpoison.registry import ClassRegistry


class PreAggregator(ABC):
    """A row transform ``(n, d) → (k, d)`` given as a mixing matrix ``(k, n)``."""

    name: ClassVar[str]  # set by @PRE_AGGREGATORS.register(name)
    paper: ClassVar[str]
    preserves_rows: ClassVar[bool] = True
    """Whether output row i still stands for client i (``k == n``)."""

    def rows(self, n: int) -> int:
        """Output rows ``k`` for ``n`` input rows."""
        return n

    def byzantine_rows(self, n: int, f: int) -> int:
        """How many output rows ``f`` Byzantine input rows can spoil."""
        return f

    def check(self, n: int, f: int) -> None:
        """Raise ``ValueError`` naming the pre-aggregator, ``n``, ``f`` and the bound."""
        check_f(self.name, n, f, n >= 1, "n ≥ 1")

    @abstractmethod
    def mix(self, updates: torch.Tensor, ctx: RoundContext) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mixed (k, d), mixing (k, n))`` with ``mixed == mixing @ updates``, in the
        updates' dtype and device."""

    def __call__(
        self, updates: torch.Tensor, ctx: RoundContext
    ) -> tuple[torch.Tensor, torch.Tensor]:
        self.check(check_updates(updates, self.name), ctx.f)
        return self.mix(updates, ctx)


PRE_AGGREGATORS: ClassRegistry[PreAggregator] = ClassRegistry("pre-aggregator", PreAggregator)


@PRE_AGGREGATORS.register("nnm")
class NearestNeighborMixing(PreAggregator):
    """NNM: row i → mean of its ``n−f`` nearest rows (itself included)."""

    paper: ClassVar[str] = "Allouah et al. 2023"

    def check(self, n: int, f: int) -> None:
        check_f(self.name, n, f, n >= 2 * f + 1, f"n ≥ 2f+1 = {2 * f + 1}")

    def mix(self, updates: torch.Tensor, ctx: RoundContext) -> tuple[torch.Tensor, torch.Tensor]:
        n = updates.shape[0]
        dist = PairwiseSquaredDistances(updates).scaled.clone()
        dist.fill_diagonal_(-1.0)  # a row is always its own nearest neighbour
        nearest = torch.sort(dist, dim=1, stable=True).indices[:, : n - ctx.f]
        mixing = torch.zeros((n, n), dtype=updates.dtype, device=updates.device)
        mixing.scatter_(1, nearest, 1.0 / (n - ctx.f))
        return mixing @ updates, mixing


@PRE_AGGREGATORS.register("bucketing")
class Bucketing(PreAggregator):
    """Bucketing: means of ``⌈n/s⌉`` random buckets of size ``s``; needs ``ctx.generator``.

    Args:
        s: bucket size.
    """

    paper: ClassVar[str] = "Karimireddy et al. 2022"
    preserves_rows: ClassVar[bool] = False

    def __init__(self, s: int = 2) -> None:
        if s < 1:
            raise ValueError(f"{self.name}: bucket size s must be ≥ 1, got s={s}")
        self.s = s

    def rows(self, n: int) -> int:
        return math.ceil(n / self.s)

    def byzantine_rows(self, n: int, f: int) -> int:
        return min(f, self.rows(n))

    def mix(self, updates: torch.Tensor, ctx: RoundContext) -> tuple[torch.Tensor, torch.Tensor]:
        n = updates.shape[0]
        g = require(ctx.generator, self.name, "ctx.generator (the random permutation)")
        perm = torch.randperm(n, generator=g, device=g.device).to(updates.device)
        bucket = torch.arange(n, device=updates.device) // self.s
        sizes = torch.bincount(bucket).to(updates.dtype)
        mixing = torch.zeros((self.rows(n), n), dtype=updates.dtype, device=updates.device)
        mixing[bucket, perm] = 1.0 / sizes[bucket]
        return mixing @ updates, mixing


@PRE_AGGREGATORS.register("clip")
class Clip(PreAggregator):
    """Static clipping of every row to L2 norm ``max_norm`` (a diagonal mixing matrix).

    Args:
        max_norm: the norm bound.
    """

    paper: ClassVar[str] = "Sun et al. 2019"

    def __init__(self, max_norm: float = 1.0) -> None:
        if max_norm <= 0:
            raise ValueError(f"{self.name}: max_norm must be > 0, got max_norm={max_norm}")
        self.max_norm = max_norm

    def mix(self, updates: torch.Tensor, ctx: RoundContext) -> tuple[torch.Tensor, torch.Tensor]:
        factors = clip_factors(updates, self.max_norm)
        return updates * factors[:, None], torch.diag(factors)  # = diag @ updates, no n×n×d product
