"""Shared pieces of the Optimal-ALIE/IPM tests: ByzFL's docstring defense, a counting rule, and
the deviation ``J`` the attacks maximise, measured against a deployed fedpoison rule or
pipeline (pre-aggregators then rule)."""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.aggregators import AGGREGATORS, AggregationResult, Aggregator, RoundContext, median
from fedpoison.aggregators.pipeline import Defense
from fedpoison.aggregators.pre import PRE_AGGREGATORS, Clip, NearestNeighborMixing
from fedpoison.aggregators.trimmed_mean import trimmed_mean

BYZFL_X = torch.arange(1.0, 10.0, dtype=torch.float64).reshape(3, 3)
"""ByzFL's docstring input ``[[1, 2, 3], [4, 5, 6], [7, 8, 9]]``."""


def byzfl_docstring_defense(rows: torch.Tensor) -> torch.Tensor:
    """ByzFL's docstring defense: ``TrMean(f=1)`` after ``[NNM(f=1), Clipping(c=2.0)]``."""
    ctx = RoundContext(f=1, client_ids=tuple(range(rows.shape[0])))
    mixed, _ = PRE_AGGREGATORS.get("nnm")().mix(rows, ctx)
    clipped, _ = PRE_AGGREGATORS.get("clip")(max_norm=2.0).mix(mixed, ctx)
    return trimmed_mean(clipped, 1)


class CountingMedian(Aggregator):
    """Coordinate-wise median counting its calls across the adversary's deep copies."""

    name = "counting_median"
    paper = "test"
    calls: ClassVar[list[int]] = []

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        CountingMedian.calls.append(updates.shape[0])
        return AggregationResult(median(updates), torch.ones(updates.shape[0]))


def heterogeneous_round(seed: int, n: int = 20, m: int = 4, d: int = 50):
    """``(own, benign)``: honest updates N(0.5, 1) per coordinate, float32."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(m, d, generator=g) + 0.5, torch.randn(n - m, d, generator=g) + 0.5


def deviation(name: str, benign: torch.Tensor, rows: torch.Tensor, f: int) -> float:
    """``‖rule(benign ∪ rows) − mean(benign)‖`` for the registered rule ``name`` with ``f``."""
    x = torch.cat([benign, rows])
    ctx = RoundContext(f=f, client_ids=tuple(range(x.shape[0])))
    out = AGGREGATORS.get(name)()(x, ctx).aggregate
    return float((out - benign.mean(dim=0)).norm())


def clip_nnm(rule: str, max_norm: float) -> Defense:
    """The ``experiment=byzfl_grid`` pipeline shape: static clipping, then NNM, then ``rule``."""
    return Defense(AGGREGATORS.get(rule)(), [Clip(max_norm=max_norm), NearestNeighborMixing()])


def pipeline_deviation(defense: Defense, benign: torch.Tensor, rows: torch.Tensor, f: int) -> float:
    """``‖defense(benign ∪ rows) − mean(benign)‖``: the damage as the deployed pipeline sees it."""
    x = torch.cat([benign, rows])
    ctx = RoundContext(f=f, client_ids=tuple(range(x.shape[0])))
    return float((defense(x, ctx).aggregate - benign.mean(dim=0)).norm())
