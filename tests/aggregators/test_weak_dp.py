"""Weak DP: the shared rule checks, the clipping examples of REFERENCES D40, σ = 0 as norm
clipping, the noise's std and its relation to central DP's stages."""

from __future__ import annotations

import pytest
import torch
from naive_rules import close
from rule_tester import RuleTester, context, data

from fedpoison.aggregators import norm_clipping, weak_dp
from fedpoison.aggregators.weak_dp import WeakDP
from fedpoison.privacy.central import CentralDP


class TestWeakDP(RuleTester):
    rule = WeakDP


class TestWeakDPClientNoise(RuleTester):
    rule = WeakDP
    params = {"noise_on": "client"}


def test_clipping_examples() -> None:
    """‖Δ‖ = 6, M = 3 → halved; ‖Δ‖ = 2 → unchanged."""
    x = torch.tensor([[6.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    assert weak_dp(x, 3.0, 0.0).tolist() == [1.5, 1.0, 0.0]


def test_without_noise_it_is_norm_clipping() -> None:
    x = data(9, 20)
    close(weak_dp(x, 1.5, 0.0), norm_clipping(x, 1.5))


@pytest.mark.parametrize(("noise_on", "std"), [("aggregate", 0.1), ("client", 0.1 / 3)])
def test_noise_std(noise_on: str, std: float) -> None:
    """The aggregate's noise has std σ (σ/√n = σ/3 for n = 9 with per-client noise)."""
    x = data(9, 200_000)
    clean = norm_clipping(x, 1.0)
    g = torch.Generator().manual_seed(3)
    noise = weak_dp(x, 1.0, 0.1, g, noise_on) - clean
    assert float(noise.std()) == pytest.approx(std, rel=0.01)
    assert abs(float(noise.mean())) < 5 * std / 200_000**0.5


def test_equals_central_dp_stages_around_the_mean() -> None:
    """privacy=central's clip, the mean, and its noise with z = σ·n/M give the same vector when
    both draw from the same generator."""
    x = data(8, 50)
    dp = CentralDP(clip_norm=2.0, noise_multiplier=0.05 * 8 / 2.0)
    clipped, _ = dp.clip(x)
    central = dp.noise(clipped.mean(dim=0), 8, torch.Generator().manual_seed(1))
    ours = weak_dp(x, 2.0, 0.05, torch.Generator().manual_seed(1))
    close(ours, central, tol=1e-12)


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError, match="weak_dp: needs max_norm > 0"):
        WeakDP(max_norm=0.0)
    with pytest.raises(ValueError, match="noise_on"):
        WeakDP(noise_on="model")  # type: ignore[arg-type]


def test_info_records_m_and_sigma() -> None:
    x = data(5)
    assert WeakDP(2.0, 0.1)(x, context(x, 0)).info == {"max_norm": 2.0, "stddev": 0.1}


@pytest.mark.slow
def test_cli_weak_dp_records_m_and_sigma(tmp_path) -> None:
    """digits BadNets through the CLI: the clip bound and the noise are in every row. (With the
    defaults M = 3, σ = 0.025 the backdoor survives: ASR 0.79–0.98 over 3 seeds.)"""
    from fedpoison_testing import run_simulation

    overrides = ["attack=backdoor", "defense=weak_dp", "num_rounds=3", "progress=false"]
    rows = run_simulation(overrides, tmp_path)["rounds"]
    assert all(r["defense_max_norm"] == 3.0 and r["defense_stddev"] == 0.025 for r in rows)
