"""Hypothesis property tests of every registered rule: symmetries, unanimity, coordinate
bounds, bounded influence, purity (input not mutated, same generator ⇒ same output) and
dtype/device preservation."""

from __future__ import annotations

import pytest
import torch
from fedpoison_testing import round_context
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.aggregators import AGGREGATORS, centered_clipping, fltrust, norm_clipping
from fedpoison.aggregators.base import Aggregator, RoundContext

ALL = sorted(AGGREGATORS.names())
PARAMS = {"flame": {"lam": 0.0}}  # noise-free FLAME for the exact symmetries
TRANSLATION = [
    "fedavg",
    "krum",
    "multi_krum",
    "median",
    "trimmed_mean",
    "bulyan",
    "geometric_median",
    "dnc",
]
SCALING = TRANSLATION + ["fltrust", "foolsgold", "flame"]
UNANIMOUS = [r for r in ALL if r not in ("foolsgold", "norm_clipping")]  # see the docstrings
SELECTING = ["krum", "multi_krum", "bulyan", "dnc", "flame"]  # reject far-away rows

settings.register_profile("agg", max_examples=25, deadline=None)


def rule(name: str, **kw) -> Aggregator:
    return AGGREGATORS.get(name)(**(PARAMS.get(name, {}) | kw))


def context(x: torch.Tensor, f: int, seed: int = 0, **kw) -> RoundContext:
    return round_context(x, f, seed, **kw)


def run(name: str, x: torch.Tensor, f: int, seed: int = 0, **kw):
    return rule(name)(x, context(x, f, seed, **kw))


@st.composite
def matrices(draw, min_rows_for_f=lambda f: max(4 * f + 3, f + 4), fs=None):
    """``(x, f)``: continuous data (ties improbable), offset and scale varied. By default
    ``n ≥ 4f+3`` (every rule runs) and ``n ≥ f+4``, so Krum sums at least two distances: with
    one neighbour, two mutual nearest neighbours always tie (→ lowest index)."""
    f = draw(st.integers(0, 2) if fs is None else fs)
    n = min_rows_for_f(f) + draw(st.integers(0, 5))
    d = draw(st.integers(1, 6))
    g = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    loc = draw(st.floats(-10, 10))
    scale = draw(st.floats(0.1, 10))
    return loc + scale * torch.randn(n, d, generator=g, dtype=torch.float64), f


def close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-8) -> None:
    torch.testing.assert_close(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=15, deadline=None)
@given(data=st.data(), perm_seed=st.integers(0, 1000))
def test_permutation_invariance(name: str, data, perm_seed: int) -> None:
    """Rows (and their client ids) permuted ⇒ same aggregate, weights permuted. Bulyan is
    drawn with f ∈ {0, 3}: for f ∈ {1, 2} its last Krum steps use one neighbour, where ties
    (→ lowest index) are structural (see test_bulyan_one_neighbour_ties)."""
    x, f = data.draw(
        matrices(fs=st.sampled_from([0, 3]) if name == "bulyan" else st.integers(0, 2))
    )
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(perm_seed))
    ids = tuple(range(x.shape[0]))
    a = run(name, x, f)
    b = run(name, x[perm], f, client_ids=tuple(ids[i] for i in perm))
    close(a.aggregate, b.aggregate)
    close(a.weights[perm], b.weights)


@pytest.mark.parametrize("name", TRANSLATION)
@settings(max_examples=15, deadline=None)
@given(data=matrices(), shift=st.lists(st.floats(-100, 100), min_size=6, max_size=6))
def test_translation_equivariance(name: str, data, shift) -> None:
    x, f = data
    t = torch.tensor(shift[: x.shape[1]], dtype=x.dtype)
    close(run(name, x + t, f).aggregate, run(name, x, f).aggregate + t, tol=1e-7)


@pytest.mark.parametrize("name", SCALING)
@settings(max_examples=15, deadline=None)
@given(data=matrices(), c=st.floats(0.01, 100))
def test_positive_scaling(name: str, data, c: float) -> None:
    x, f = data
    close(run(name, c * x, f).aggregate, c * run(name, x, f).aggregate, tol=1e-7)


@pytest.mark.parametrize("name", UNANIMOUS)
@settings(max_examples=10, deadline=None)
@given(data=matrices())
def test_unanimity(name: str, data) -> None:
    x, f = data
    same = x[:1].expand_as(x).clone()
    close(run(name, same, f).aggregate, same[0])


@settings(max_examples=40, deadline=None)
@given(data=matrices(min_rows_for_f=lambda f: 2 * f + 1))
def test_median_and_trimmed_mean_stay_within_coordinate_bounds(data) -> None:
    x, f = data
    s = torch.sort(x, dim=0).values
    n = x.shape[0]
    med = run("median", x, f).aggregate
    assert bool((s[(n - 1) // 2] <= med).all() and (med <= s[n // 2]).all())
    for b in range((n - 1) // 2 + 1):
        tm = rule("trimmed_mean", b=b)(x, context(x, f)).aggregate
        assert bool((s[b] - 1e-12 <= tm).all() and (tm <= s[n - 1 - b] + 1e-12).all())


@settings(max_examples=40, deadline=None)
@given(
    data=matrices(min_rows_for_f=lambda f: 2 * f + 1),
    byzantine=st.lists(st.floats(-1e12, 1e12), min_size=12, max_size=12),
)
def test_median_and_trimmed_mean_bounded_influence(data, byzantine) -> None:
    """Whatever f rows say, each coordinate stays within the honest rows' range (b = f)."""
    x, f = data
    honest = x[f:]
    x = x.clone()
    x[:f] = torch.tensor(byzantine, dtype=x.dtype)[: f * x.shape[1]].reshape(f, x.shape[1])
    lo, hi = honest.min(dim=0).values, honest.max(dim=0).values
    for name in ("median", "trimmed_mean"):
        out = run(name, x, f).aggregate
        assert bool((lo - 1e-9 <= out).all() and (out <= hi + 1e-9).all()), name


@pytest.mark.parametrize("name", SELECTING)
@settings(max_examples=10, deadline=None)
@given(data=matrices(), far=st.floats(1e3, 1e8), seed=st.integers(0, 1000))
def test_selecting_rules_reject_far_rows(name: str, data, far: float, seed: int) -> None:
    """f colluding rows (one far point plus jitter) get weight 0 and the aggregate stays in the
    honest cluster's bounding box (for FLAME: the box of the honest rows after its median-norm
    clipping, widened by 6σ of its noise). (FLAME: the honest majority shares a direction; DnC only
    promises this for rows that deviate along a common direction. Bulyan's last selection
    steps use one neighbour, where two colluding rows are each other's nearest neighbour and
    can be selected; its coordinate-wise stage still keeps them out of the aggregate.)"""
    x, f = data
    g = torch.Generator().manual_seed(seed)
    x = x - x.mean(dim=0) + 50.0  # honest models share a direction (for FLAME's cosine)
    honest = x[f:]
    x = x.clone()
    target = -far * torch.rand(1, x.shape[1], generator=g, dtype=x.dtype)
    x[:f] = target + torch.rand(f, x.shape[1], generator=g, dtype=x.dtype)
    result = run(name, x, f)
    assert name == "bulyan" or bool((result.weights[:f] == 0).all())
    lo, hi, margin = honest.min(dim=0).values, honest.max(dim=0).values, 1e-9
    if name == "flame":  # FLAME averages rows clipped to the median norm S, then adds N(0, (λS)²)
        norms = x.norm(dim=1)
        boxes = []
        for s in (norms.median(), norms.quantile(0.5)):  # either median convention
            clipped = honest * (s / honest.norm(dim=1)).clamp(max=1.0)[:, None]
            boxes += [clipped.min(dim=0).values, clipped.max(dim=0).values]
        lo, hi = (
            torch.stack([lo, *boxes]).min(dim=0).values,
            torch.stack([hi, *boxes]).max(dim=0).values,
        )
        margin = 6 * 0.001 * float(norms.quantile(0.5))  # 6σ of the default λ = 0.001
    out = result.aggregate
    assert bool((lo - margin <= out).all() and (out <= hi + margin).all())


@settings(max_examples=30, deadline=None)
@given(
    data=matrices(min_rows_for_f=lambda f: f + 1),
    byzantine=st.lists(st.floats(-1e9, 1e9), min_size=12, max_size=12),
    tau=st.floats(0.1, 10),
)
def test_clipping_rules_bounded_influence(data, byzantine, tau: float) -> None:
    """Each row moves centered clipping (L=1) and norm clipping by at most τ/n, and FLTrust's
    output never exceeds ‖g_0‖."""
    x, f = data
    n = x.shape[0]
    y = x.clone()
    y[:f] = torch.tensor(byzantine, dtype=x.dtype)[: f * x.shape[1]].reshape(f, x.shape[1])
    center = x.mean(dim=0)
    for fn in (lambda z: centered_clipping(z, center, tau=tau), lambda z: norm_clipping(z, tau)):
        assert float((fn(x) - fn(y)).norm()) <= 2 * f * tau / n * (1 + 1e-9) + 1e-12
    g0 = x[-1]
    assert float(fltrust(y, g0).norm()) <= float(g0.norm()) * (1 + 1e-9)


@pytest.mark.parametrize("name", ALL)
@settings(max_examples=5, deadline=None)
@given(data=matrices(), seed=st.integers(0, 1000))
def test_pure_and_reproducible(name: str, data, seed: int) -> None:
    """The input is not mutated and the same generator seed gives the same output
    (FLAME with its noise on)."""
    x, f = data
    before = x.clone()
    r = AGGREGATORS.get(name)
    a = r()(x, context(x, f, seed))
    b = r()(x, context(x, f, seed))
    assert torch.equal(x, before)
    assert torch.equal(a.aggregate, b.aggregate) and torch.equal(a.weights, b.weights)
    assert a.weights.shape == (x.shape[0],) and bool((a.weights >= 0).all())


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", ALL)
def test_dtype_and_device_preserved(name: str, dtype: torch.dtype, device: str) -> None:
    x = torch.randn(11, 7, generator=torch.Generator().manual_seed(0), dtype=dtype).to(device)
    ctx = context(
        x, 2, server_update=x.mean(dim=0), global_weights=torch.zeros(7, dtype=dtype, device=device)
    )
    result = AGGREGATORS.get(name)()(x, ctx)
    for t in (result.aggregate, result.weights):
        assert t.dtype == dtype and t.device.type == device
    assert result.aggregate.shape == (7,)
