"""Optimal-IPM (ByzFL; Allouah et al. 2023): the shared attack checks, ByzFL's docstring golden
(also through the deployed pipeline the view carries), the search's evaluations of the deployed
rule, a deployed rule hurt at least as much as by plain IPM, and the search through the
pre-aggregators (REFERENCES D28) hurting clip + NNM more than a rule-only search."""

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

from fedpoison.aggregators import AGGREGATORS, Defense, FLTrust, TrimmedMean, median
from fedpoison.aggregators.pre import Clip, NearestNeighborMixing
from fedpoison.attacks import IPM, OptimalIPM, ipm_attack, optimal_ipm_attack
from fedpoison.attacks.line_search import deviation as objective
from fedpoison.attacks.line_search import line_search
from fedpoison.attacks.optimal_ipm import ipm_crafter


class TestOptimalIPM(AttackTester):
    attack = OptimalIPM


def test_byzfl_docstring_golden() -> None:
    """ByzFL: Opt-IPM(TrMean(f=1), [NNM(f=1), Clipping(2.0)], f=1) on its 3×3 example: the
    expansion fails at once and the 12th contraction step wins, τ = 10·0.8¹²."""
    tau = line_search(objective(BYZFL_X, byzfl_docstring_defense, ipm_crafter(BYZFL_X, 1)))
    assert tau == pytest.approx(10 * 0.8**12, rel=1e-12)
    out = optimal_ipm_attack(BYZFL_X, 1, byzfl_docstring_defense)
    expected = torch.tensor([[-2.74877907, -3.43597384, -4.1231686]], dtype=torch.float64)
    torch.testing.assert_close(out, expected, atol=1e-7, rtol=0)


def test_byzfl_docstring_golden_through_the_deployed_pipeline() -> None:
    """The class on a view carrying ByzFL's docstring pipeline (NNM, Clipping(2.0), TrMean;
    f = 1) finds the same τ = 10·0.8¹²: the search runs the pre-aggregators, as ByzFL's."""
    pipeline = Defense(TrimmedMean(), [NearestNeighborMixing(), Clip(max_norm=2.0)])
    own = torch.zeros(1, 3, dtype=torch.float64)  # Opt-IPM crafts from the benign rows only
    got = OptimalIPM().craft(view(own, BYZFL_X, knows_defense=True, defense=pipeline, f=1))
    torch.testing.assert_close(got.updates, optimal_ipm_attack(BYZFL_X, 1, byzfl_docstring_defense))


@pytest.mark.parametrize("rule", ["krum", "median", "trimmed_mean", "meamed", "geometric_median"])
@pytest.mark.parametrize("seed", range(2))
def test_searching_through_clip_and_nnm_hurts_them_more_than_the_rule_alone(
    rule: str, seed: int
) -> None:
    """With the preset's clip + NNM deployed, the τ found through the pipeline differs from the
    rule-only search's and moves the deployed aggregate strictly farther from the honest mean
    (issue #19: the rule-only τ is so large that NNM neutralises it)."""
    own, benign = heterogeneous_round(seed)
    m = own.shape[0]
    pipeline = clip_nnm(rule, max_norm=5.0)
    through = OptimalIPM().craft(view(own, benign, knows_defense=True, defense=pipeline, f=m))
    alone = OptimalIPM().craft(view(own, benign, knows_defense=True, defense=pipeline.rule, f=m))
    assert not torch.equal(through.updates, alone.updates)
    damage = pipeline_deviation(pipeline, benign, through.updates, m)
    assert damage > pipeline_deviation(pipeline, benign, alone.updates, m)


def test_craft_searches_the_deployed_rule_evals_times() -> None:
    own, benign = heterogeneous_round(1, n=10, m=3, d=5)
    CountingMedian.calls.clear()
    deployed = view(own, benign, knows_defense=True, defense=CountingMedian(), f=3)
    got = OptimalIPM(evals=9, delta=4.0).craft(deployed).updates
    assert CountingMedian.calls == [10] * 9
    expected = ipm_crafter(benign, 3)(
        line_search(objective(benign, median, ipm_crafter(benign, 3)), 9, 0.0, 4.0, 0.8)
    )
    assert torch.equal(got, expected)
    assert torch.equal(got, got[:1].expand_as(got))  # every attacker sends the same row


def test_refuses_a_defense_it_cannot_simulate_and_bad_search_parameters() -> None:
    with pytest.raises(ValueError, match="attack optimal_ipm cannot simulate defense fltrust"):
        OptimalIPM().check_defense(Defense(FLTrust()))
    with pytest.raises(ValueError, match=r"optimal_ipm: ratio must lie in \(0.5, 1\)"):
        OptimalIPM(ratio=0.3)


@pytest.mark.parametrize("rule", ["median", "trimmed_mean", "krum", "fedavg"])
@pytest.mark.parametrize("seed", range(3))
def test_hurts_the_deployed_rule_at_least_as_much_as_ipm(rule: str, seed: int) -> None:
    """The published direction: Opt-IPM moves the deployed rule's aggregate at least as far
    from the honest mean as IPM at its default ε = 0.1, and farther than no scaling (τ = 0)."""
    own, benign = heterogeneous_round(seed)
    m = own.shape[0]
    deployed = view(own, benign, knows_defense=True, defense=AGGREGATORS.get(rule)(), f=m)
    optimal = deviation(rule, benign, OptimalIPM().craft(deployed).updates, m)
    assert optimal >= deviation(rule, benign, IPM().craft(view(own, benign)).updates, m)
    assert optimal > deviation(rule, benign, ipm_attack(benign, m, 0.0), m)
