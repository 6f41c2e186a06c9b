"""Partitioners: invariants for all of them, and each one's skew behaves as its paper says."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2_contingency

from fedpoison.data import DATASETS, PARTITIONERS
from fedpoison.data.fang_split import fang
from fedpoison.data.partition import dirichlet, iid
from fedpoison.data.shards import shards
from fedpoison.data.skew import label_counts, total_variation
from fedpoison.models import MODELS

BALANCED = np.repeat(np.arange(10), 1000)  # 10 classes × 1,000, sorted
CASES = [
    ("iid", {}),
    ("dirichlet", {"alpha": 0.5}),
    ("shards", {"shards_per_client": 2}),
    ("fang", {"q": 0.5}),
    ("fang", {"q": 0.1}),
    ("fang", {"q": 1.0}),
]


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _check_partition(parts: list[np.ndarray], n: int, num_clients: int) -> None:
    """Sorted int64 index arrays, one per client, none empty, using every index exactly once."""
    assert len(parts) == num_clients
    for p in parts:
        assert p.dtype == np.int64 and len(p) > 0 and np.all(np.diff(p) > 0)
    np.testing.assert_array_equal(np.sort(np.concatenate(parts)), np.arange(n))


def _mean_tv(labels: np.ndarray, parts: list[np.ndarray]) -> float:
    return float(total_variation(label_counts(labels, parts, int(labels.max()) + 1)).mean())


@pytest.mark.parametrize(("name", "params"), CASES)
def test_invariants_and_determinism(name: str, params: dict) -> None:
    labels = _rng(1).permutation(BALANCED)
    partitioner = PARTITIONERS.get(name)
    parts = partitioner(labels, 25, _rng(7), **params)
    _check_partition(parts, len(labels), 25)
    again = partitioner(labels, 25, _rng(7), **params)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = partitioner(labels, 25, _rng(8), **params)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other, strict=True))


@settings(max_examples=60, deadline=None)
@given(
    num_classes=st.integers(2, 8),
    n=st.integers(20, 300),
    extra_clients=st.integers(0, 12),
    q=st.floats(0.0, 1.0),
    k=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_invariants_property(
    num_classes: int, n: int, extra_clients: int, q: float, k: int, seed: int
) -> None:
    labels = np.random.default_rng(seed).integers(0, num_classes, size=n)
    labels[:num_classes] = np.arange(num_classes)  # every class present
    num_clients = min(num_classes + extra_clients, n // k)
    if num_clients >= num_classes:
        _check_partition(fang(labels, num_clients, _rng(seed), q=q), n, num_clients)
    _check_partition(shards(labels, num_clients, _rng(seed), shards_per_client=k), n, num_clients)
    _check_partition(iid(labels, num_clients, _rng(seed)), n, num_clients)


# ---------------------------------------------------------------- fang


def test_fang_iid_at_one_over_c() -> None:
    labels = _rng(2).permutation(np.repeat(np.arange(10), 2000))
    parts = fang(labels, 10, _rng(0), q=0.1)
    counts = label_counts(labels, parts, 10)
    assert total_variation(counts).max() < 0.05
    assert chi2_contingency(counts).pvalue > 1e-3  # label ⟂ client


def test_fang_skew_rises_with_q() -> None:
    labels = _rng(3).permutation(BALANCED)
    skew = [
        _mean_tv(labels, fang(labels, 20, _rng(0), q=q)) for q in (0.1, 0.3, 0.5, 0.7, 0.9, 1.0)
    ]
    assert all(a < b for a, b in zip(skew, skew[1:], strict=False)), skew
    assert skew[0] < 0.08 and skew[-1] > 0.85  # ideal: q − 1/C, i.e. 0 (+ sampling noise) and 0.9


def test_fang_q1_gives_one_class_per_client_and_even_groups() -> None:
    labels = _rng(4).permutation(BALANCED)
    counts = label_counts(labels, fang(labels, 25, _rng(0), q=1.0), 10)
    assert np.all((counts > 0).sum(axis=1) == 1)
    clients_per_class = (counts > 0).sum(axis=0)
    assert sorted(clients_per_class.tolist()) == [2] * 5 + [3] * 5  # 25 clients in 10 groups
    assert clients_per_class[:5].tolist() == [3] * 5  # the first groups get the extra client


def test_fang_fix_up_fills_empty_clients() -> None:
    labels = np.repeat(np.arange(10), 2)  # 20 examples, 20 clients, all-or-nothing groups
    parts = fang(labels, 20, _rng(0), q=1.0)
    _check_partition(parts, 20, 20)
    assert all(len(p) == 1 for p in parts)


def test_fang_ignores_label_values_only_their_order() -> None:
    labels = _rng(5).permutation(BALANCED)
    a = fang(labels, 12, _rng(0), q=0.6)
    b = fang(labels * 3 + 100, 12, _rng(0), q=0.6)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"q": 1.5}, r"q must be in \[0, 1\]"),
        ({"q": -0.1}, r"q must be in"),
        ({"num_clients": 9}, "≥ 10 classes"),
    ],
)
def test_fang_errors(kwargs: dict, match: str) -> None:
    args = {"num_clients": 20, "q": 0.5, **kwargs}
    with pytest.raises(ValueError, match=match):
        fang(BALANCED, args["num_clients"], _rng(0), q=args["q"])


# ---------------------------------------------------------------- shards


@pytest.mark.parametrize("k", [1, 2, 5])
def test_shards_give_about_k_classes(k: int) -> None:
    labels = _rng(6).permutation(np.repeat(np.arange(10), 600))
    parts = shards(labels, 100, _rng(0), shards_per_client=k)
    assert {len(p) for p in parts} == {60}  # 100·k shards of 60/k examples, k per client
    classes = (label_counts(labels, parts, 10) > 0).sum(axis=1)
    assert classes.max() <= k  # shards of 60/k never straddle a class boundary here
    assert classes.mean() > 0.7 * k  # and two shards of one class in one client are rare


def test_shards_straddling_bound() -> None:
    labels = _rng(6).integers(0, 10, size=5000)
    parts = shards(labels, 50, _rng(0), shards_per_client=2)
    classes = (label_counts(labels, parts, 10) > 0).sum(axis=1)
    assert classes.max() <= 4


def test_shards_errors() -> None:
    with pytest.raises(ValueError, match="shards_per_client"):
        shards(np.arange(10), 6, _rng(0), shards_per_client=2)
    with pytest.raises(ValueError, match="≥ 1"):
        shards(np.arange(10), 2, _rng(0), shards_per_client=0)


# ---------------------------------------------------------------- iid and dirichlet


def test_iid_sizes_and_balance() -> None:
    labels = _rng(7).permutation(BALANCED)
    parts = iid(labels, 7, _rng(0))
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1
    assert _mean_tv(labels, parts) < 0.05


def test_dirichlet_skew_grows_as_alpha_falls() -> None:
    labels = _rng(8).permutation(BALANCED)
    skew = [_mean_tv(labels, dirichlet(labels, 20, _rng(0), alpha=a)) for a in (100.0, 1.0, 0.1)]
    assert skew[0] < 0.1 < skew[1] < skew[2], skew
    parts = dirichlet(labels, 20, _rng(0), alpha=0.1, min_size=5)
    assert min(len(p) for p in parts) >= 5


# ---------------------------------------------------------------- registries


@pytest.mark.parametrize(
    ("registry", "name"),
    [
        (PARTITIONERS, "fang"),
        (PARTITIONERS, "shards"),
        (DATASETS, "mnist"),
        (DATASETS, "cifar10"),
        (MODELS, "resnet8"),
    ],
)
def test_registries_refuse_duplicates(registry, name: str) -> None:
    original = registry.get(name)
    with pytest.raises(ValueError, match="already registered"):
        registry.register(name)(lambda *a, **k: None)
    assert registry.get(name) is original
