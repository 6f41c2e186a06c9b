"""The AGR-tailored attack (Shejwalkar & Houmansadr 2021, §IV-B; docs/conventions.md §C21): the
shared attack checks, the official loop as oracle and the defense it needs."""

from __future__ import annotations

import pytest
import torch
from attack_tester import AttackTester

from fedpoison.attacks import Adaptive, adaptive_attack


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
