"""CRFL: the shared rule checks, the model-norm clip and noise, and the certified radius of
REFERENCES D39 against a naive transcription and the reference numbers."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from naive_rules import close
from rule_tester import RuleTester, context, data
from torch import nn

from fedpoison.aggregators import crfl
from fedpoison.aggregators.crfl import CRFL, ClipSchedule, Threat, crfl_radius, smoothed_votes
from fedpoison.aggregators.flat_model import FlatModel

MNIST = Threat(
    attackers=2,
    clients_per_round=20,
    local_iters=30,
    lr=0.001,
    scale=100.0,
    poison_fraction=0.05,
    attack_round=70,
    num_rounds=100,
)
"""The official MNIST config: N = 20, τ = 60000/(20·100), attackers [1, 2] at round 70."""


class TestCRFL(RuleTester):
    rule = CRFL
    exact = {"sigma": 0.0}


def phi(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def radius_naive(pa, pb, t: Threat, sigma, sigma_t, rho_adv, rho) -> float:
    """``cal_prob_bound`` of certify_mnist.py, written out (with the abstain rule)."""
    if pa <= pb:
        return 0.0
    lz = math.sqrt(2 + 2 * rho_adv + rho_adv**2)
    prod = 1.0
    for r in range(t.attack_round + 1, t.num_rounds):
        prod = prod * (2 * phi(rho(r) / sigma) - 1)
    prod = prod * (2 * phi(rho(t.num_rounds) / sigma_t) - 1)
    p_sum = sum((1 / t.clients_per_round) ** 2 for _ in range(t.attackers))
    inner = -math.log(1 - (math.sqrt(pa) - math.sqrt(pb)) ** 2) * sigma**2
    inner /= 2 * t.attackers * t.local_iters**2 * lz**2 * p_sum * t.scale**2 * t.lr**2
    inner /= t.poison_fraction**2 * prod
    return math.sqrt(inner)


def test_reference_radius() -> None:
    """REFERENCES D39 [run]: p̂_A = 0.99, p̂_B = 0.005, M = 1000, α = 0.001, ρ_{t_adv} = 3."""
    slack = math.sqrt(math.log(1 / 0.001) / 2000)
    assert slack == pytest.approx(0.058770, abs=1e-6)
    rad = crfl_radius(
        torch.tensor([0.99 - slack]), torch.tensor([0.005 + slack]), MNIST, ClipSchedule(),
        0.01, 0.01, rho_attack=3.0,
    )  # fmt: skip
    assert float(rad) == pytest.approx(0.096237, abs=1e-6)
    raw = crfl_radius(torch.tensor([0.99]), torch.tensor([0.005]), MNIST, ClipSchedule(), 0.01,
                      0.01, rho_attack=3.0)  # fmt: skip
    assert float(raw) == pytest.approx(0.158676, abs=1e-6)


@settings(max_examples=50, deadline=None)
@given(
    pa=st.floats(0.0, 0.999),
    pb=st.floats(0.0, 0.999),
    sigma=st.floats(0.05, 2.0),
    slope=st.floats(0.0, 0.2),
    t_adv=st.integers(1, 30),
    extra=st.integers(0, 10),
)
def test_radius_matches_the_naive_formula(pa, pb, sigma, slope, t_adv, extra) -> None:
    threat = Threat(3, 10, 5, 0.1, 10.0, 0.1, t_adv, t_adv + extra)
    schedule = ClipSchedule(slope, 0.5, 3.0)
    pa_t, pb_t = torch.tensor([pa], dtype=torch.float64), torch.tensor([pb], dtype=torch.float64)
    got = float(crfl_radius(pa_t, pb_t, threat, schedule, sigma, sigma))
    want = radius_naive(pa, pb, threat, sigma, sigma, schedule(t_adv), schedule)
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def test_radius_abstains_and_its_monotonicity() -> None:
    """p_A ≤ p_B abstains. At fixed vote fractions the radius *grows* with σ_T (the factor
    2Φ(ρ_T/σ_T) − 1 sits in the denominator, as in the official code; REFERENCES D39's
    "decreasing in σ_T" holds only through the vote fractions, which more noise lowers) and
    falls as 1/γ in the attackers' scale."""
    pa, pb = torch.tensor([0.4, 0.9]), torch.tensor([0.5, 0.05])
    schedule = ClipSchedule(0.0, 0.3, 0.3)
    radii = [crfl_radius(pa, pb, MNIST, schedule, 0.1, s) for s in (0.05, 0.1, 0.2, 0.4)]
    assert all(float(r[0]) == 0.0 for r in radii)  # p_A ≤ p_B: abstain
    values = [float(r[1]) for r in radii]
    assert values == sorted(values) and values[0] < values[-1]
    double = Threat(**(vars(MNIST) | {"scale": 2 * MNIST.scale}))
    half = crfl_radius(pa, pb, double, schedule, 0.1, 0.1)
    assert float(half[1]) == pytest.approx(float(radii[1][1]) / 2)


def test_certain_votes_give_a_finite_radius() -> None:
    """p_A = 1, p_B = 0: the official code returns a sentinel 100 000; here a finite radius."""
    rad = crfl_radius(torch.tensor([1.0]), torch.tensor([0.0]), MNIST, ClipSchedule(), 0.01, 0.01)
    assert math.isfinite(float(rad)) and float(rad) > 0


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1000), bound=st.floats(0.1, 10.0))
def test_model_norm_is_clipped(seed, bound) -> None:
    x, g = data(6, 5, seed=seed), data(1, 5, seed=seed + 1)[0] * 3
    model = g + crfl(x, g, bound, 0.0)
    assert float(model.norm()) <= bound * (1 + 1e-12)
    if float((g + x.mean(dim=0)).norm()) <= bound:
        close(model, g + x.mean(dim=0))


def test_noise_std_and_info() -> None:
    x = torch.zeros(4, 100_000, dtype=torch.float64)
    rule = CRFL(sigma=0.02, clip_max=1e9)
    ctx = context(x, 0, server_round=3)
    result = rule(x, ctx)
    assert float(result.aggregate.std()) == pytest.approx(0.02, rel=0.01)
    assert result.info == {"rho": pytest.approx(2.3), "clipped": 0.0}


def test_schedule_is_the_official_mnist_one() -> None:
    assert [ClipSchedule()(t) for t in (0, 10, 130, 200)] == [2.0, 3.0, 15.0, 15.0]


def test_smoothed_votes_and_certificate() -> None:
    """A linear model with a large margin: every copy votes for the true class, so p̂_A = 1,
    the accuracy is 1 and every example is certified at radius 0."""
    net = nn.Linear(2, 2)
    model = FlatModel(net, (2,))
    flat = torch.tensor([5.0, 0.0, -5.0, 0.0, 0.0, 0.0])  # class = sign of x_0
    x = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [2.0, 1.0]])
    y = torch.tensor([0, 1, 0])
    votes = smoothed_votes(model, flat, x, 50, 0.01, torch.Generator().manual_seed(0))
    assert votes.tolist() == [[50, 0], [0, 50], [50, 0]]
    out = CRFL(certify_samples=50).certify(model, flat, x, y, MNIST, torch.Generator())
    assert out["smoothed_accuracy"] == 1.0 and out["abstain"] == 0.0
    assert out["certified_accuracy@0"] == 1.0 and out["mean_radius"] > 0


def test_missing_global_weights_is_an_error() -> None:
    x = data()
    with pytest.raises(ValueError, match="crfl: needs ctx.global_weights"):
        CRFL()(x, context(x, 0, global_weights=None))


@pytest.mark.slow
def test_cli_run_records_the_certificate(tmp_path) -> None:
    """``defense=crfl`` through the CLI's composition: the certify step after the last round is
    in results.json, with the attack read from the run (2 of 12 clients, 3 rounds)."""
    from fedpoison_testing import run_simulation

    from fedpoison.outputs import read_results

    overrides = [
        "federation.num_clients=12",
        "threat.num_malicious=2",
        "num_rounds=3",
        "progress=false",
        "attack=backdoor",
        "defense=crfl",
        "defense.certify_samples=20",
        "defense.clip_offset=10",
    ]
    results = run_simulation(overrides, tmp_path)
    cert = results["certify"]
    assert cert["samples"] == 20 and 0.0 <= cert["smoothed_accuracy"] <= 1.0
    assert cert["threat"]["attackers"] == 2 and cert["threat"]["clients_per_round"] == 12
    assert cert["threat"]["attack_round"] == 3 and cert["threat"]["num_rounds"] == 3
    assert cert["certified_accuracy@0"] <= cert["smoothed_accuracy"]
    assert read_results(tmp_path)["certify"] == cert
    assert [r["defense_rho"] for r in results["rounds"]] == [10.1, 10.2, 10.3]
