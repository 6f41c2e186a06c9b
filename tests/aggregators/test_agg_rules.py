"""Rule-level behaviour: preconditions, non-finite and extreme inputs, the stateful rules
(centered clipping, RFA ``previous``, FoolsGold), context requirements, FLTrust's skipped
round, FLAME's noise, DnC's filtering and which rules read ``num_examples``."""

from __future__ import annotations

import re

import pytest
import torch
from fedpoison_testing import round_context

import fedpoison.aggregators as agg
from fedpoison.aggregators import AGGREGATORS
from fedpoison.aggregators.base import RoundContext
from fedpoison.aggregators.centered_clipping import CenteredClipping
from fedpoison.aggregators.dnc import DnC
from fedpoison.aggregators.flame import Flame
from fedpoison.aggregators.fltrust import FLTrust
from fedpoison.aggregators.foolsgold import FoolsGold
from fedpoison.aggregators.geometric_median import GeometricMedian
from fedpoison.aggregators.multi_krum import MultiKrum
from fedpoison.aggregators.trimmed_mean import TrimmedMean

ALL = sorted(AGGREGATORS.names())


def data(
    n: int = 11, d: int = 6, seed: int = 0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def context(x: torch.Tensor, f: int = 2, seed: int = 0, **kw) -> RoundContext:
    return round_context(x, f, seed, **kw)


# ----------------------------------------------------------------------------- preconditions

PRECONDITIONS = [
    ("krum", 6, 2, "2f+3"),
    ("multi_krum", 6, 2, "2f+3"),
    ("bulyan", 10, 2, "4f+3"),
    ("trimmed_mean", 4, 2, "2b+1"),
    ("median", 4, 2, "2f+1"),
    ("geometric_median", 4, 2, "2f+1"),
    ("flame", 4, 2, "2f+1"),
    ("dnc", 2, 2, "c·f"),
]


@pytest.mark.parametrize(("name", "n", "f", "bound"), PRECONDITIONS)
def test_precondition_errors_name_rule_n_f_and_bound(name: str, n: int, f: int, bound: str) -> None:
    rule = AGGREGATORS.get(name)()
    for call in (lambda: rule.check(n, f), lambda: rule(data(n), context(data(n), f))):
        with pytest.raises(ValueError) as err:
            call()
        message = str(err.value)
        assert (
            message.startswith(name)
            and f"n={n}" in message
            and f"f={f}" in message
            and bound in message
        )
    rule.check(
        n + 1 if name in ("dnc",) else {"krum": 7, "multi_krum": 7, "bulyan": 11}.get(name, 5), f
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda x: agg.krum(x, 2),
        lambda x: agg.krum_scores(x, 2),
        lambda x: agg.multi_krum(x, 2, m=7),
        lambda x: agg.bulyan(x, 2),
        lambda x: agg.trimmed_mean(x, 3),
    ],
)
def test_function_preconditions(call) -> None:
    with pytest.raises(ValueError, match=r"n=6"):
        call(data(6))


def test_negative_f_and_bad_shapes_are_refused() -> None:
    with pytest.raises(ValueError, match="f must be ≥ 0"):
        agg.krum(data(), -1)
    with pytest.raises(ValueError, match="2-D floating"):
        agg.median(torch.ones(5))
    with pytest.raises(ValueError, match="2-D floating"):
        agg.mean(torch.ones(3, 2, dtype=torch.int64))


# ----------------------------------------------------------------------------- non-finite / extreme


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_rows_are_refused(name: str, bad: float) -> None:
    x = data()
    x[1, 3] = bad
    x[4, 0] = bad
    with pytest.raises(
        ValueError, match=re.escape(f"{name}: updates contain NaN/Inf in rows [1, 4]")
    ):
        AGGREGATORS.get(name)()(x, context(x))


@pytest.mark.parametrize(
    "fn", [agg.mean, agg.median, lambda x: agg.krum(x, 1), lambda x: agg.trimmed_mean(x, 1)]
)
def test_functions_refuse_non_finite(fn) -> None:
    x = data()
    x[2, 2] = float("nan")
    with pytest.raises(ValueError, match=re.escape("NaN/Inf in rows [2]")):
        fn(x)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ALL)
def test_extreme_finite_rows_give_finite_outputs(name: str, dtype: torch.dtype) -> None:
    x = data(dtype=dtype)
    x[0], x[1] = 1e30, -1e30
    x[2, ::2] = 1e30
    result = AGGREGATORS.get(name)()(x, context(x))
    assert bool(torch.isfinite(result.aggregate).all()) and bool(
        torch.isfinite(result.weights).all()
    )


def test_extreme_rows_keep_krum_scores_finite() -> None:
    x = data(dtype=torch.float32)
    x[0] = 3e38
    scores = agg.krum_scores(x, 2)
    assert scores.dtype == torch.float64 and bool(torch.isfinite(scores).all())
    assert agg.krum(x, 2).abs().max() < 10


# ----------------------------------------------------------------------------- parameters


def test_robust_rules_ignore_reported_example_counts() -> None:
    x = data()
    counts = torch.arange(1, 12, dtype=torch.float32) ** 3
    for name in ALL:
        a = AGGREGATORS.get(name)()(x, context(x))
        b = AGGREGATORS.get(name)()(x, context(x, num_examples=counts))
        if name == "fedavg":
            torch.testing.assert_close(a.aggregate, x.mean(0))
            torch.testing.assert_close(b.aggregate, (counts.double() / counts.sum()) @ x)
        else:
            assert torch.equal(a.aggregate, b.aggregate), name
    unweighted = AGGREGATORS.get("fedavg")(weighted=False)(x, context(x, num_examples=counts))
    torch.testing.assert_close(unweighted.aggregate, x.mean(0))


def test_mean_weights_are_validated() -> None:
    x = data(3)
    torch.testing.assert_close(agg.mean(x, torch.tensor([1.0, 0.0, 1.0])), (x[0] + x[2]) / 2)
    for bad in ([1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [1.0, 1.0]):
        with pytest.raises(ValueError, match="mean: weights"):
            agg.mean(x, torch.tensor(bad))


def test_trimmed_mean_b_defaults_to_f_and_beta_is_a_fraction() -> None:
    x = data(10)
    torch.testing.assert_close(TrimmedMean()(x, context(x, f=3)).aggregate, agg.trimmed_mean(x, 3))
    torch.testing.assert_close(
        TrimmedMean(b=1)(x, context(x, f=3)).aggregate, agg.trimmed_mean(x, 1)
    )
    torch.testing.assert_close(
        TrimmedMean(beta=0.29)(x, context(x)).aggregate, agg.trimmed_mean(x, 2)
    )
    with pytest.raises(ValueError, match="b or beta"):
        TrimmedMean(b=1, beta=0.1)


def test_multi_krum_default_m_and_weights() -> None:
    x = data()
    result = MultiKrum()(x, context(x, f=2))
    assert int((result.weights > 0).sum()) == 9
    torch.testing.assert_close(result.aggregate, result.weights @ x)
    with pytest.raises(ValueError, match="m=12"):
        MultiKrum(m=12).check(11, 2)


# ----------------------------------------------------------------------------- stateful rules


def test_centered_clipping_keeps_the_centre_across_rounds() -> None:
    x1, x2 = data(seed=1), data(seed=2) + 5
    rule = CenteredClipping(tau=1.0)
    v1 = rule(x1, context(x1)).aggregate
    torch.testing.assert_close(v1, agg.centered_clipping(x1, None, tau=1.0))
    saved = rule.state_dict()
    v2 = rule(x2, context(x2)).aggregate
    torch.testing.assert_close(v2, agg.centered_clipping(x2, v1, tau=1.0))
    fresh = CenteredClipping(tau=1.0)
    fresh.load_state_dict(saved)
    torch.testing.assert_close(fresh(x2, context(x2)).aggregate, v2)


def test_geometric_median_previous_init_is_state() -> None:
    x1, x2 = data(seed=1), data(seed=2)
    rule = GeometricMedian(init="previous", iters=1)
    z1 = rule(x1, context(x1)).aggregate
    torch.testing.assert_close(z1, agg.geometric_median(x1, iters=1, init="zero"))
    z2 = rule(x2, context(x2)).aggregate
    torch.testing.assert_close(z2, agg.geometric_median(x2, iters=1, init="previous", previous=z1))
    with pytest.raises(ValueError, match="previous"):
        agg.geometric_median(x1, init="previous")


def test_geometric_median_weights_are_its_coefficients() -> None:
    x = data()
    result = GeometricMedian()(x, context(x))
    torch.testing.assert_close(result.aggregate, result.weights @ x)
    torch.testing.assert_close(result.weights.sum(), torch.tensor(1.0, dtype=x.dtype))


def test_foolsgold_rejects_sybils_over_rounds() -> None:
    rule = FoolsGold()
    g = torch.Generator().manual_seed(0)
    direction = torch.randn(20, generator=g, dtype=torch.float64)
    for _ in range(3):
        honest = torch.randn(7, 20, generator=g, dtype=torch.float64)
        sybils = direction + 0.01 * torch.randn(3, 20, generator=g, dtype=torch.float64)
        x = torch.cat([honest, sybils])
        result = rule(x, context(x, client_ids=(3, 4, 5, 6, 7, 8, 9, 100, 101, 102)))
    assert bool((result.weights[7:] == 0).all()) and bool((result.weights[:7] > 0).all())
    torch.testing.assert_close(result.aggregate, result.weights @ x)
    assert rule.state_dict()["ids"] == [3, 4, 5, 6, 7, 8, 9, 100, 101, 102]


def test_foolsgold_history_follows_client_ids_not_rows() -> None:
    x1, x2 = data(5, seed=1), data(5, seed=2)
    a, b = FoolsGold(), FoolsGold()
    a(x1, context(x1, client_ids=(0, 1, 2, 3, 4)))
    b(x1.flip(0), context(x1, client_ids=(4, 3, 2, 1, 0)))
    ra = a(x2, context(x2, client_ids=(0, 1, 2, 3, 4)))
    rb = b(x2.flip(0), context(x2, client_ids=(4, 3, 2, 1, 0)))
    torch.testing.assert_close(ra.aggregate, rb.aggregate)
    torch.testing.assert_close(ra.weights, rb.weights.flip(0))
    c = FoolsGold()
    c.load_state_dict(a.state_dict())
    torch.testing.assert_close(c(x1, context(x1)).weights, a(x1, context(x1)).weights)
    with pytest.raises(ValueError, match="distinct client ids"):
        FoolsGold()(x1, context(x1, client_ids=(0, 0, 1, 2, 3)))


def test_foolsgold_absent_clients_count_only_when_asked() -> None:
    g = torch.Generator().manual_seed(3)
    sybil = torch.randn(8, generator=g, dtype=torch.float64)
    first = torch.cat([torch.randn(4, 8, generator=g, dtype=torch.float64), sybil[None]])
    second = torch.cat([torch.randn(4, 8, generator=g, dtype=torch.float64), sybil[None]])
    ids1, ids2 = (0, 1, 2, 3, 50), (4, 5, 6, 7, 51)  # sybils 50 and 51 never meet
    for compare_absent, rejected in ((True, True), (False, False)):
        rule = FoolsGold(compare_absent=compare_absent)
        rule(first, context(first, client_ids=ids1))
        result = rule(second, context(second, client_ids=ids2))
        assert bool(result.weights[4] == 0) == rejected


# ----------------------------------------------------------------------------- context needs


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("fltrust", "server_update"),
        ("flame", "global_weights"),
        ("flame", "generator"),
        ("dnc", "generator"),
    ],
)
def test_missing_context_is_an_error(name: str, missing: str) -> None:
    x = data()
    with pytest.raises(
        ValueError, match=f"{name}: needs .*{missing}|{name}: needs a torch.Generator"
    ):
        AGGREGATORS.get(name)()(x, context(x, **{missing: None}))


def test_fltrust_all_zero_trust_skips_the_round() -> None:
    x = data()
    result = FLTrust()(x, context(x, server_update=torch.zeros(6, dtype=x.dtype)))
    assert result.info == {"skipped": 1.0}
    assert not bool(result.aggregate.any()) and not bool(result.weights.any())
    opposed = FLTrust()(x.abs(), context(x, server_update=-torch.ones(6, dtype=x.dtype)))
    assert opposed.info == {"skipped": 1.0}


def test_fltrust_weights_are_trust_shares() -> None:
    x = data()
    g0 = x.mean(dim=0)
    result = FLTrust()(x, context(x, server_update=g0))
    cos = (x @ g0) / (x.norm(dim=1) * g0.norm())
    torch.testing.assert_close(result.weights, cos.clamp_min(0) / cos.clamp_min(0).sum())
    assert FLTrust.needs_server_update


def test_flame_noise_is_lambda_times_median_norm_from_the_generator() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(9, 20000, generator=g, dtype=torch.float64) + 1.0
    quiet = Flame(lam=0.0)(x, context(x)).aggregate
    a, b = (Flame(lam=0.01)(x, context(x, seed=5)) for _ in range(2))
    other = Flame(lam=0.01)(x, context(x, seed=6)).aggregate
    assert torch.equal(a.aggregate, b.aggregate) and not torch.equal(a.aggregate, other)
    sigma = float((a.aggregate - quiet).std())
    assert sigma == pytest.approx(0.01 * float(x.norm(dim=1).median()), rel=0.03)
    assert (
        a.info["admitted"] >= 5
    )  # HDBSCAN's cluster is a majority (it may leave honest noise points)


def test_flame_rejects_a_sybil_minority_with_another_direction() -> None:
    g = torch.Generator().manual_seed(1)
    base = torch.randn(30, generator=g, dtype=torch.float64)
    honest = base + 0.1 * torch.randn(7, 30, generator=g, dtype=torch.float64)
    evil = -base + 0.1 * torch.randn(3, 30, generator=g, dtype=torch.float64)
    x = torch.cat([honest, evil])
    result = Flame(lam=0.0)(x, context(x, f=3))
    assert bool((result.weights[7:] == 0).all()) and int((result.weights[:7] > 0).sum()) >= 6


def test_dnc_drops_c_f_rows_per_iteration_and_intersects() -> None:
    x = data(12, 40)
    x[:3] += 25 * torch.linspace(1, 2, 3, dtype=x.dtype)[:, None]  # one common direction
    result = DnC(niters=4, b=10, c=1.0)(x, context(x, f=3))
    assert bool((result.weights[:3] == 0).all())
    assert int((result.weights > 0).sum()) <= 9
    torch.testing.assert_close(result.aggregate, result.weights @ x)
    loose = DnC(niters=1, b=40, c=2.0)(x, context(x, f=3))
    assert int((loose.weights > 0).sum()) == 6
