"""The AGR-tailored attack (Shejwalkar & Houmansadr 2021, §IV-B; docs/conventions.md §C21): the
shared attack checks, the official loop as oracle and the defense it needs; and
``simulated_defense``, which every defense-aware attack searches with: the whole deployed
pipeline (pre-aggregators then rule, each with its stage's ``f``; REFERENCES D28), on copies,
under common randomness."""

from __future__ import annotations

from typing import ClassVar

import pytest
import torch
from attack_tester import AttackTester, Mean

from fedpoison.aggregators import (
    AggregationResult,
    Aggregator,
    CenteredClipping,
    Defense,
    RoundContext,
)
from fedpoison.aggregators.pre import Bucketing, Clip, NearestNeighborMixing
from fedpoison.attacks import UPDATE_ATTACKS, Adaptive, adaptive_attack
from fedpoison.attacks.adaptive import simulated_defense


class TestAdaptive(AttackTester):
    attack = Adaptive


def _official_tailored(benign: torch.Tensor, m: int, aggregate) -> torch.Tensor:
    """Naive transcription of the official AGR-tailored loop (trimmed-mean notebook)."""
    model_re = benign.mean(0)
    deviation = model_re / torch.norm(model_re)
    lamda, threshold_diff, prev_loss, lamda_fail, lamda_succ = 10.0, 1e-5, -1.0, 10.0, 0.0
    while abs(lamda_succ - lamda) > threshold_diff:
        mal_update = model_re - lamda * deviation
        mal_updates = torch.cat([torch.stack([mal_update] * m), benign])
        loss = float(torch.norm(aggregate(mal_updates) - model_re))
        if prev_loss < loss:
            lamda_succ = lamda
            lamda = lamda + lamda_fail / 2
        else:
            lamda = lamda - lamda_fail / 2
        lamda_fail = lamda_fail / 2
        prev_loss = loss
    return torch.stack([model_re - lamda_succ * deviation] * m)


@pytest.mark.parametrize("which", ["median", "mean"])
def test_adaptive_matches_official_loop(
    which: str, make_view, median_defense, mean_defense
) -> None:
    defense = median_defense if which == "median" else mean_defense
    own, benign = torch.randn(3, 5), torch.randn(8, 5, dtype=torch.float32)
    view = make_view(own, benign, knows_defense=True, defense=defense, f=3)
    out = Adaptive().craft(view).updates
    fn = (lambda r: r.median(0).values) if which == "median" else (lambda r: r.mean(0))
    assert torch.allclose(out, _official_tailored(benign, 3, fn), atol=1e-6)
    assert torch.allclose(out, adaptive_attack(benign, 3, fn), atol=1e-6)
    assert defense.calls == 0  # probes ran on copies: the server's rule is untouched


def test_adaptive_needs_defense(make_view, mean_defense) -> None:
    own, benign = torch.randn(2, 3), torch.randn(6, 3)
    view = make_view(own, benign, knows_defense=False, defense=mean_defense, f=2)
    assert view.defense is None and view.f is None
    with pytest.raises(ValueError, match="knows_defense"):
        Adaptive().craft(view)
    assert Adaptive().requires_defense()


class RecordingMean(Aggregator):
    """The mean, recording the ``(rows, f)`` of every call across the adversary's copies."""

    name = "recording_mean"
    paper = "test"
    seen: ClassVar[list[tuple[int, int]]] = []

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        RecordingMean.seen.append((updates.shape[0], ctx.f))
        return AggregationResult(updates.mean(dim=0), torch.ones(updates.shape[0]))


def _clip(rows: torch.Tensor, max_norm: float) -> torch.Tensor:
    return rows * torch.clamp(max_norm / rows.norm(dim=1), max=1.0)[:, None]


def _nnm(rows: torch.Tensor, f: int) -> torch.Tensor:
    """Naive NNM: row i → mean of its n − f nearest rows (itself included)."""
    order = torch.cdist(rows, rows).argsort(dim=1, stable=True)[:, : rows.shape[0] - f]
    return torch.stack([rows[i].mean(dim=0) for i in order])


def test_simulated_defense_runs_pre_aggregators_then_the_rule_under_common_randomness(
    make_view,
) -> None:
    """clip → bucketing(s = 5) → mean, transcribed naively: every row clipped, one permutation
    from the generator re-seeded with the view's first draw, bucket means, their mean; the
    rule sees ⌈12/5⌉ = 3 rows and f' = min(4, 3) = 3, and every call draws the same buckets."""
    g = torch.Generator().manual_seed(3)
    own, benign = torch.randn(3, 4, generator=g), torch.randn(9, 4, generator=g)
    live = Defense(RecordingMean(), [Clip(max_norm=1.0), Bucketing(s=5)])
    aggregate = simulated_defense(make_view(own, benign, knows_defense=True, defense=live, f=4))
    rows = torch.cat([benign, own])
    seed = int(torch.randint(0, 2**62, (1,), generator=torch.Generator().manual_seed(0)))
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(seed))
    clipped = _clip(rows, 1.0)
    expected = torch.stack([clipped[perm[i : i + 5]].mean(dim=0) for i in (0, 5, 10)]).mean(0)
    RecordingMean.seen.clear()
    first, second = aggregate(rows), aggregate(rows)
    torch.testing.assert_close(first, expected)
    assert torch.equal(first, second)
    assert RecordingMean.seen == [(3, 3), (3, 3)]


def test_adaptive_searches_through_clip_and_nnm(make_view) -> None:
    """Against clip → NNM → mean the attack equals the search on the naive composition
    (float64, and a rule the crafted rows keep moving: on a plateau of the deviation the
    search's comparisons would be decided by rounding)."""
    g = torch.Generator().manual_seed(4)
    own, benign = (torch.randn(k, 6, generator=g, dtype=torch.float64) for k in (3, 9))
    rule = Mean()
    live = Defense(rule, [Clip(max_norm=2.0), NearestNeighborMixing()])
    view = make_view(own, benign, knows_defense=True, defense=live, f=3)
    out = Adaptive().craft(view).updates
    want = adaptive_attack(benign, 3, lambda r: _nnm(_clip(r, 2.0), 3).mean(dim=0))
    torch.testing.assert_close(out, want)
    assert rule.calls == 0  # probes ran on copies


DEFENSE_AWARE = sorted(name for name, cls in UPDATE_ATTACKS.items() if cls.needs_defense)


@pytest.mark.parametrize("name", DEFENSE_AWARE)
def test_defense_aware_attacks_leave_the_deployed_pipeline_untouched(name: str, make_view) -> None:
    """Probes run on deep copies: a stateful rule behind a pre-aggregator keeps its state."""
    g = torch.Generator().manual_seed(5)
    own, benign = torch.randn(2, 5, generator=g), torch.randn(8, 5, generator=g)
    live = Defense(CenteredClipping(tau=1.0), [Clip(max_norm=3.0)])
    view = make_view(own, benign, knows_defense=True, defense=live, f=2)
    UPDATE_ATTACKS.get(name)().craft(view)
    assert live.rule.center is None
