"""Optimal-ALIE (ByzFL; Allouah et al. 2023): the shared attack checks per sign, ByzFL's
docstring goldens (also through the deployed pipeline the view carries), the search's
evaluations of the deployed rule, its sign and std options, a deployed rule hurt at least as
much as by plain ALIE, and the search through the pre-aggregators (REFERENCES D28) hurting
clip + NNM more than a rule-only search."""

from __future__ import annotations

import pytest
import torch
from attack_tester import AttackTester, view
from optimal_cases import (
    BYZFL_X,
    CountingMedian,
    byzfl_docstring_defense,
    clip_nnm,
    deviation,
    heterogeneous_round,
    pipeline_deviation,
)

from fedpoison.aggregators import (
    AGGREGATORS,
    Defense,
    FLTrust,
    TrimmedMean,
    median,
    trimmed_mean,
)
from fedpoison.aggregators.pre import Clip, NearestNeighborMixing
from fedpoison.attacks import ALIE, OptimalALIE, alie_attack, optimal_alie_attack
from fedpoison.attacks.line_search import deviation as objective
from fedpoison.attacks.line_search import line_search
from fedpoison.attacks.optimal_alie import alie_crafter


class TestOptimalALIE(AttackTester):
    attack = OptimalALIE


class TestOptimalALIEAlieDirection(AttackTester):
    attack = OptimalALIE
    params = {"sign": 1, "unbiased_std": False}


def test_byzfl_docstring_golden() -> None:
    """ByzFL: Opt-ALIE(TrMean(f=1), [NNM(f=1), Clipping(2.0)], f=1) on its 3×3 example gives
    τ = 2.97328 and (12.91985, 13.91985, 14.91985); ByzFL adds τσ to the vectors it is given,
    which is ``sign=+1`` on these rows."""
    craft = alie_crafter(BYZFL_X, 1, sign=1)
    tau = line_search(objective(BYZFL_X, byzfl_docstring_defense, craft))
    assert tau == pytest.approx(2.97328, abs=1e-5)
    out = optimal_alie_attack(BYZFL_X, 1, byzfl_docstring_defense, sign=1)
    torch.testing.assert_close(
        out, torch.tensor([[12.91985, 13.91985, 14.91985]]).double(), atol=1e-5, rtol=0
    )


def test_byzfl_docstring_golden_through_the_deployed_pipeline() -> None:
    """The class on a view carrying ByzFL's docstring pipeline (NNM, Clipping(2.0), TrMean;
    f = 1) gives ByzFL's τ = 2.97328 row: the search runs the pre-aggregators, as ByzFL's."""
    pipeline = Defense(TrimmedMean(), [NearestNeighborMixing(), Clip(max_norm=2.0)])
    own = torch.zeros(1, 3, dtype=torch.float64)  # Opt-ALIE crafts from the benign rows only
    deployed = view(own, BYZFL_X, knows_defense=True, defense=pipeline, f=1)
    got = OptimalALIE(sign=1).craft(deployed).updates
    expected = torch.tensor([[12.91985, 13.91985, 14.91985]], dtype=torch.float64)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("rule", ["krum", "median", "trimmed_mean"])
@pytest.mark.parametrize("seed", range(2))
def test_searching_through_clip_and_nnm_hurts_them_more_than_the_rule_alone(
    rule: str, seed: int
) -> None:
    """With the preset's clip + NNM deployed, the τ found through the pipeline differs from the
    rule-only search's and moves the deployed aggregate strictly farther from the honest mean;
    the rule-only τ is so large that NNM neutralises the copies entirely (issue #19)."""
    own, benign = heterogeneous_round(seed)
    m = own.shape[0]
    pipeline = clip_nnm(rule, max_norm=10.0)
    through = OptimalALIE().craft(view(own, benign, knows_defense=True, defense=pipeline, f=m))
    alone = OptimalALIE().craft(view(own, benign, knows_defense=True, defense=pipeline.rule, f=m))
    assert not torch.equal(through.updates, alone.updates)
    damage = pipeline_deviation(pipeline, benign, through.updates, m)
    assert damage > 0.5
    assert pipeline_deviation(pipeline, benign, alone.updates, m) < 1e-5


def test_against_the_mean_every_proposal_succeeds() -> None:
    out = optimal_alie_attack(BYZFL_X, 2, lambda rows: rows.mean(dim=0), sign=-1)
    tau = 10.0 * (2**19 - 1)
    expected = BYZFL_X.mean(dim=0) - tau * BYZFL_X.std(dim=0)
    torch.testing.assert_close(out, expected.expand(2, 3))


def test_craft_searches_the_deployed_rule_with_its_declared_f() -> None:
    """The class equals the function on the view's rule (declared f = 3, m = 2 copies) and
    calls a copy of the rule exactly ``evals`` times on n rows."""
    own, benign = heterogeneous_round(0, n=12, m=2, d=6)
    CountingMedian.calls.clear()
    got = OptimalALIE(evals=7).craft(
        view(own, benign, knows_defense=True, defense=CountingMedian(), f=3)
    )
    assert CountingMedian.calls == [12] * 7
    assert torch.equal(got.updates, optimal_alie_attack(benign, 2, median, evals=7))
    deployed = view(own, benign, knows_defense=True, defense=TrimmedMean(), f=3)
    want = optimal_alie_attack(benign, 2, lambda rows: trimmed_mean(rows, 3))
    assert torch.equal(OptimalALIE().craft(deployed).updates, want)


def test_sign_and_std_options() -> None:
    honest = torch.randn(6, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    mu, unbiased, population = honest.mean(0), honest.std(0), honest.std(0, correction=0)
    for sign, flag, std in ((-1, True, unbiased), (1, False, population)):
        torch.testing.assert_close(
            alie_crafter(honest, 3, sign, flag)(1.5), (mu + sign * 1.5 * std).expand(3, 4)
        )
    with pytest.raises(ValueError, match="optimal_alie: sign must be"):
        OptimalALIE(sign=2)


def test_refuses_a_defense_it_cannot_simulate() -> None:
    with pytest.raises(ValueError, match="attack optimal_alie cannot simulate defense fltrust"):
        OptimalALIE().check_defense(Defense(FLTrust()))


@pytest.mark.parametrize("rule", ["median", "trimmed_mean", "krum", "fedavg"])
@pytest.mark.parametrize("seed", range(3))
def test_hurts_the_deployed_rule_at_least_as_much_as_alie(rule: str, seed: int) -> None:
    """The published direction: against the deployed rule, Opt-ALIE's rows move the aggregate
    at least as far from the honest mean as ALIE at z_max (either sign) does."""
    own, benign = heterogeneous_round(seed)
    m = own.shape[0]
    defense = AGGREGATORS.get(rule)()
    rows = OptimalALIE().craft(view(own, benign, knows_defense=True, defense=defense, f=m))
    optimal = deviation(rule, benign, rows.updates, m)
    for sign in (1, -1):
        plain = ALIE(sign=sign).craft(view(own, benign)).updates
        assert optimal >= deviation(rule, benign, plain, m)
    assert optimal > deviation(rule, benign, alie_attack(benign, m, 0.0), m)
