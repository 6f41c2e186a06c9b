"""Shared builders for the attack tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from fedpoison.aggregators.base import AggregationResult, Aggregator, RoundContext
from fedpoison.attacks import AdversaryView, ThreatModel, build_view


class CoordinateMedian(Aggregator):
    """A tiny stand-in defense (coordinate-wise median) that counts how often it runs."""

    name = "test_median"
    paper = "test"

    def __init__(self) -> None:
        self.calls = 0

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        self.calls += 1
        weights = torch.ones(updates.shape[0], dtype=updates.dtype)
        return AggregationResult(updates.median(dim=0).values, weights)


class Mean(CoordinateMedian):
    name = "test_mean"

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        self.calls += 1
        weights = torch.ones(updates.shape[0], dtype=updates.dtype)
        return AggregationResult(updates.mean(dim=0), weights)


ViewFactory = Callable[..., AdversaryView]


@pytest.fixture
def make_view() -> ViewFactory:
    """``make_view(own, benign, knowledge="all", knows_defense=False, seed=0, ...)``."""

    def build(
        own: torch.Tensor,
        benign: torch.Tensor,
        knowledge: str = "all",
        knows_defense: bool = False,
        seed: int = 0,
        server_lr: float = 1.0,
        defense: Aggregator | None = None,
        f: int | None = None,
    ) -> AdversaryView:
        threat = ThreatModel(knowledge=knowledge, knows_defense=knows_defense)  # type: ignore[arg-type]
        return build_view(
            own,
            benign,
            threat=threat,
            global_weights=torch.zeros(own.shape[1], dtype=own.dtype),
            server_lr=server_lr,
            generator=torch.Generator().manual_seed(seed),
            defense=defense,
            f=f,
        )

    return build


@pytest.fixture
def median_defense() -> CoordinateMedian:
    return CoordinateMedian()


@pytest.fixture
def mean_defense() -> Mean:
    return Mean()
