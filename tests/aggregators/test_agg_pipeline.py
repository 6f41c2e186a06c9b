"""Pre-aggregators (mixing identity, NNM oracle, bucketing), ``Defense`` (client-level
weights, f after bucketing, state), ``build_defense`` from every shipped YAML and the generated
catalogue (the registries and YAML stems: ``tests/test_registries.py``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from fedpoison_testing import round_context
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

import fedpoison.aggregators as agg
from fedpoison.aggregators import AGGREGATORS, PRE_AGGREGATORS, Defense, build_defense
from fedpoison.aggregators.base import RoundContext
from fedpoison.aggregators.catalogue import markdown_table
from fedpoison.aggregators.centered_clipping import CenteredClipping
from fedpoison.aggregators.foolsgold import FoolsGold
from fedpoison.aggregators.krum import Krum
from fedpoison.aggregators.multi_krum import MultiKrum
from fedpoison.aggregators.pre import Bucketing, Clip, NearestNeighborMixing

CONF = Path(agg.__file__).resolve().parent.parent / "conf" / "defense"
YAMLS = sorted(p.stem for p in CONF.glob("*.yaml"))
# rules whose aggregate is exactly weights @ updates (so client weights can be checked by it)
LINEAR = sorted(n for n, rule in AGGREGATORS.items() if rule.aggregate_is_weighted_sum)


def data(n: int = 13, d: int = 5, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def context(x: torch.Tensor, f: int = 1, seed: int = 0, **kw) -> RoundContext:
    return round_context(x, f, seed, **kw)


PRES = [NearestNeighborMixing(), Bucketing(s=1), Bucketing(s=2), Bucketing(s=3), Clip(max_norm=0.5)]


@pytest.mark.parametrize("pre", PRES, ids=lambda p: f"{p.name}")
@settings(max_examples=15, deadline=None)
@given(n=st.integers(3, 12), d=st.integers(1, 5), seed=st.integers(0, 10**6))
def test_mixing_identity(pre, n: int, d: int, seed: int) -> None:
    x = data(n, d, seed)
    before = x.clone()
    mixed, mixing = pre(x, context(x, f=1, seed=seed))
    assert torch.equal(x, before)
    assert mixing.shape == (pre.rows(n), n) and mixed.shape == (pre.rows(n), d)
    torch.testing.assert_close(mixed, mixing @ x)
    if pre.name != "clip":
        torch.testing.assert_close(mixing.sum(dim=1), torch.ones(pre.rows(n), dtype=x.dtype))
    if pre.name == "bucketing":  # every client in exactly one bucket
        assert torch.equal((mixing > 0).sum(dim=0), torch.ones(n, dtype=torch.int64))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(3, 10), d=st.integers(1, 4), seed=st.integers(0, 10**6), f=st.integers(0, 4))
def test_nnm_matches_loop_oracle(n: int, d: int, seed: int, f: int) -> None:
    f = min(f, (n - 1) // 2)
    x = data(n, d, seed)
    mixed, _ = NearestNeighborMixing()(x, context(x, f=f))
    for i in range(n):
        dists = sorted(
            (0.0 if j == i else float(((x[i] - x[j]) ** 2).sum()), j != i, j) for j in range(n)
        )
        nearest = [j for _, _, j in dists[: n - f]]
        torch.testing.assert_close(mixed[i], x[nearest].mean(dim=0))


def test_bucketing_uses_the_generator() -> None:
    x = data(10)
    a = Bucketing(s=3)(x, context(x, seed=1))[1]
    b = Bucketing(s=3)(x, context(x, seed=1))[1]
    c = Bucketing(s=3)(x, context(x, seed=2))[1]
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert a.shape == (4, 10) and sorted((a > 0).sum(dim=1).tolist()) == [1, 3, 3, 3]


PRE_SPECS = [
    [],
    ["nnm"],
    [{"name": "bucketing", "s": 2}],
    [{"name": "clip", "max_norm": 1.0}],
    ["nnm", "clip"],
]
CASES = [
    (name, pre)
    for name in LINEAR
    for pre in PRE_SPECS
    # per-client rules cannot follow bucketing: refused, see below
    if not (AGGREGATORS.get(name).needs_client_rows and {"name": "bucketing", "s": 2} in pre)
]


@pytest.mark.parametrize(("name", "pre"), CASES)
def test_defense_client_weights_reproduce_the_aggregate(name: str, pre) -> None:
    x = data(17)
    target = f"fedpoison.aggregators.{AGGREGATORS.get(name).__name__}"
    defense, _ = build_defense({"_target_": target, "pre": pre})
    result = defense(x, context(x, f=1))
    assert result.weights.shape == (17,)
    torch.testing.assert_close(result.aggregate, result.weights @ x)


def test_defense_maps_rejections_through_buckets() -> None:
    x = data(12)
    defense = Defense(Krum(), [Bucketing(s=2)])
    result = defense(x, context(x, f=1))
    assert int((result.weights > 0).sum()) == 2  # the chosen bucket's two clients
    torch.testing.assert_close(
        result.weights[result.weights > 0], torch.full((2,), 0.5, dtype=x.dtype)
    )


def test_f_after_bucketing_is_the_worst_case() -> None:
    defense = Defense(Krum(), [Bucketing(s=2)])
    assert defense.stages(10, 2) == [(10, 2), (5, 2)]
    assert defense.stages(10, 9) == [(10, 9), (5, 5)]
    with pytest.raises(ValueError, match=r"krum: needs n ≥ 2f\+3 = 7, got n=5, f=2"):
        defense.check(10, 2)
    defense.check(14, 2)
    assert defense.name == "bucketing+krum"


def test_per_client_rules_cannot_follow_bucketing() -> None:
    with pytest.raises(ValueError, match="foolsgold"):
        Defense(FoolsGold(), [Bucketing()])
    Defense(FoolsGold(), [NearestNeighborMixing()])


def test_defense_state_round_trip() -> None:
    x1, x2 = data(seed=1), data(seed=2)
    a = Defense(CenteredClipping(tau=0.5), [Clip(max_norm=2.0)])
    a(x1, context(x1))
    b = Defense(CenteredClipping(tau=0.5), [Clip(max_norm=2.0)])
    b.load_state_dict(a.state_dict())
    torch.testing.assert_close(a(x2, context(x2)).aggregate, b(x2, context(x2)).aggregate)


def test_defense_rejects_non_finite_before_any_stage() -> None:
    x = data()
    x[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"NaN/Inf in rows \[3\]"):
        Defense(MultiKrum(), [NearestNeighborMixing()])(x, context(x))


# ----------------------------------------------------------------------------- configs


@pytest.mark.parametrize("name", YAMLS)
def test_build_defense_from_every_yaml(name: str) -> None:
    cfg = OmegaConf.load(CONF / f"{name}.yaml")
    assert cfg.f is None and list(cfg.pre) == []
    defense, f = build_defense(cfg)
    assert f is None and defense.pre == ()
    assert type(defense.rule) is AGGREGATORS.get(name)
    assert cfg._target_ == f"fedpoison.aggregators.{type(defense.rule).__name__}"
    x = data(13)
    result = defense(x, context(x, f=2))
    assert result.aggregate.shape == (5,) and bool(torch.isfinite(result.aggregate).all())


@pytest.mark.parametrize("name", YAMLS)
def test_every_yaml_field_has_a_comment(name: str) -> None:
    lines = (CONF / f"{name}.yaml").read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ")
    for line in lines[1:]:
        if line and not line.startswith("_target_"):
            assert " # " in line, line


def test_build_defense_with_f_and_pre_aggregators() -> None:
    cfg = OmegaConf.load(CONF / "trimmed_mean.yaml")
    cfg.f = 3
    cfg.pre = ["nnm", {"name": "bucketing", "s": 2}]
    defense, f = build_defense(cfg)
    assert f == 3 and [p.name for p in defense.pre] == ["nnm", "bucketing"]
    assert defense.pre[1].s == 2
    assert defense.stages(20, 3) == [(20, 3), (20, 3), (10, 3)]
    with pytest.raises(KeyError, match="unknown pre-aggregator 'nope'"):
        build_defense({"_target_": "fedpoison.aggregators.Median", "pre": ["nope"]})


def test_catalogue_lists_every_rule_with_paper_and_requirement() -> None:
    table = markdown_table()
    for name, rule in AGGREGATORS.items():
        assert f"| `{name}` | {rule.paper} | {rule.requirement} | `{rule.__module__}` |" in table
    for name in PRE_AGGREGATORS.names():
        assert f"| `{name}` |" in table
    assert "4f+3" in table and math.isfinite(len(table))
