"""DeepSight: the shared rule checks (a linear model with d parameters as ``ctx.model``), the
NEUP / threshold-exceedings / label examples of REFERENCES D36 against naive transcriptions,
DDifs against a loop over inputs, the cluster classification and the clipping."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rule_tester import RuleTester, context, data
from torch import nn

from fedpoison.aggregators.deepsight import (
    DeepSight,
    accepted_clusters,
    ddifs,
    neups,
    suspicious,
    threshold_exceedings,
)
from fedpoison.aggregators.flat_model import FlatModel


class TestDeepSight(RuleTester):
    rule = DeepSight
    params = {"samples": 64}
    bound = "n ≥ 2"
    f = 2


def neup_naive(weight: list[list[list[float]]], bias: list[list[float]]) -> list[list[float]]:
    out = []
    for w, b in zip(weight, bias, strict=True):
        energy = [abs(b[j]) + sum(abs(v) for v in w[j]) for j in range(len(b))]
        total = sum(e * e for e in energy)
        out.append([e * e / total for e in energy])
    return out


def test_reference_neups_and_threshold_exceedings() -> None:
    """Δb = (0.1, 0, 0), Σ|ΔW| per row = 0.1: NEUP = (2/3, 1/6, 1/6), ξ = 2/9, TE = 1; a uniform
    update gives 1/3 each and TE = 3."""
    weight = torch.tensor([[[0.1], [0.1], [0.1]], [[0.1], [0.1], [0.1]]])
    bias = torch.tensor([[0.1, 0.0, 0.0], [0.0, 0.0, 0.0]])
    neup = neups(weight, bias)
    torch.testing.assert_close(
        neup, torch.tensor([[2 / 3, 1 / 6, 1 / 6], [1 / 3, 1 / 3, 1 / 3]], dtype=torch.float64)
    )
    assert threshold_exceedings(neup).tolist() == [1, 3]


def test_labels_below_half_the_median() -> None:
    assert suspicious(torch.tensor([1, 3, 3, 3])).tolist() == [True, False, False, False]
    assert suspicious(torch.tensor([2, 4, 4, 4])).tolist() == [False] * 4  # 2 is not < 2


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 5), p=st.integers(2, 6), q=st.integers(1, 4))
def test_neups_match_the_naive_formula(seed, n, p, q) -> None:
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(n, p, q, generator=g, dtype=torch.float64)
    bias = torch.randn(n, p, generator=g, dtype=torch.float64)
    want = torch.tensor(neup_naive(weight.tolist(), bias.tolist()), dtype=torch.float64)
    torch.testing.assert_close(neups(weight, bias), want)


def test_ddifs_match_a_loop_over_inputs() -> None:
    net = nn.Linear(3, 2)
    model = FlatModel(net, (3,))
    g = torch.Generator().manual_seed(0)
    glob = torch.randn(8, generator=g, dtype=torch.float64)
    updates = 0.3 * torch.randn(4, 8, generator=g, dtype=torch.float64)
    x = torch.rand(50, 3, generator=g, dtype=torch.float64)

    def probs(flat, xi):
        w, b = flat[:6].reshape(2, 3), flat[6:]
        z = w @ xi + b
        e = [math.exp(v) for v in z.tolist()]
        return [v / sum(e) for v in e]

    want = []
    for k in range(4):
        ratios = [
            [a / b for a, b in zip(probs(glob + updates[k], xi), probs(glob, xi), strict=True)]
            for xi in x
        ]
        want.append([sum(r[i] for r in ratios) / len(x) for i in range(2)])
    got = ddifs(model, glob, updates, x, batch=7)
    torch.testing.assert_close(got, torch.tensor(want, dtype=torch.float64))


def test_clusters_with_a_third_suspicious_are_rejected() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1, -1])
    flags = torch.tensor([False, False, True, True, False, False, False])
    # cluster 0: 1/3 suspicious → not below τ = 1/3 → rejected; cluster 1 likewise
    assert accepted_clusters(labels, flags, noise_singletons=False).tolist() == [False] * 7
    flags = torch.tensor([False, False, False, True, False, False, False])
    want = [True] * 3 + [False] * 4
    assert accepted_clusters(labels, flags, noise_singletons=False).tolist() == want


def test_noise_points_are_singletons_or_rejected() -> None:
    """Default: a noise point is a cluster of its own (its suspicious fraction is 0 or 1), so
    it is accepted iff it is not suspicious; ``noise_singletons=False`` rejects every one."""
    labels = np.array([-1, -1, 0, 0, 0, -1])
    flags = torch.tensor([True, False, False, False, True, False])
    assert accepted_clusters(labels, flags).tolist() == [False, True, False, False, False, True]
    assert accepted_clusters(labels, flags, noise_singletons=False).tolist() == [False] * 6


def accepted_naive(
    labels: list[int], flags: list[bool], tau: float, singletons: bool
) -> list[bool]:
    """Step 7 transcribed: relabel each noise point as a new cluster (or drop it), then accept
    the members of each cluster whose suspicious fraction is below τ."""
    fresh = iter(range(max(labels, default=0) + 1, 2 * len(labels) + 2))
    cluster = [c if c >= 0 else (next(fresh) if singletons else None) for c in labels]
    out = []
    for c in cluster:
        members = [i for i, d in enumerate(cluster) if c is not None and d == c]
        out.append(bool(members) and sum(flags[i] for i in members) / len(members) < tau)
    return out


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-1, 3), st.booleans()), min_size=1, max_size=12),
    st.sampled_from([1 / 3, 0.5, 1.0]),
    st.booleans(),
)
def test_accepted_clusters_match_the_naive_rule(rows, tau, singletons) -> None:
    labels, flags = [r[0] for r in rows], [r[1] for r in rows]
    got = accepted_clusters(np.array(labels), torch.tensor(flags), tau, singletons)
    assert got.tolist() == accepted_naive(labels, flags, tau, singletons)


def mlp_setting(n_honest: int = 9, n_bad: int = 3, seed: int = 0):
    """A 2-layer network; honest deltas share a direction (so they form a cluster of at least
    HDBSCAN's min_cluster_size = 5), backdoor-like deltas push only output neuron 0 (one large
    NEUP: few threshold exceedings) in one shared direction."""
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5))
    model = FlatModel(net, (4,))
    g = torch.Generator().manual_seed(seed)
    glob = torch.randn(model.dim, generator=g, dtype=torch.float64) * 0.5
    base = 0.05 * torch.randn(model.dim, generator=g, dtype=torch.float64)
    honest = base + 0.005 * torch.randn(n_honest, model.dim, generator=g, dtype=torch.float64)
    bad = 0.01 * torch.randn(n_bad, model.dim, generator=g, dtype=torch.float64)
    w_slice, _, b_slice = model.output_layer()
    target = torch.zeros(model.dim, dtype=torch.float64)
    target[w_slice.start : w_slice.start + 6] = 1.0  # output row 0
    target[b_slice.start] = 1.0
    bad += target
    return model, glob, torch.cat([bad, honest])


def test_backdoor_like_updates_are_rejected_and_the_rest_clipped() -> None:
    model, glob, x = mlp_setting()
    ctx = context(x, 3, global_weights=glob, model=model)
    result = DeepSight(samples=500)(x, ctx)
    accepted = result.weights > 0
    assert not bool(accepted[:3].any()) and int(accepted[3:].sum()) >= 5
    bound = float(torch.quantile(x.norm(dim=1), 0.5))
    kept = x[accepted] * (bound / x[accepted].norm(dim=1)).clamp(max=1.0)[:, None]
    torch.testing.assert_close(result.aggregate, kept.mean(dim=0))
    assert result.info["suspicious"] >= 3


def test_without_single_clusters_a_small_minority_is_accepted() -> None:
    """``single_cluster=False`` (FLPoison's first stages): HDBSCAN cannot return one cluster
    plus outliers, so 3 attackers (fewer than min_cluster_size = 5) next to one honest group
    leave every stage all noise, the merged distances are constant and the final clustering
    accepts everyone (3/12 suspicious < τ). The reason the default allows single clusters."""
    model, glob, x = mlp_setting()
    ctx = context(x, 3, global_weights=glob, model=model)
    result = DeepSight(samples=500, single_cluster=False)(x, ctx)
    assert bool((result.weights > 0).all())


def test_logit_variant_runs_and_differs_in_ddifs() -> None:
    model, glob, x = mlp_setting()
    inputs = torch.rand(100, 4, dtype=torch.float64)
    assert not torch.allclose(ddifs(model, glob, x, inputs), ddifs(model, glob, x, inputs, True))


def test_model_is_required() -> None:
    x = data(6)
    with pytest.raises(ValueError, match="deepsight: needs ctx.model"):
        DeepSight(samples=8)(x, context(x, 0, model=None))


def test_model_without_output_layer_is_an_error() -> None:
    x = data(6, 4)
    model = FlatModel(nn.Conv1d(1, 2, 1), (1, 3))
    with pytest.raises(ValueError, match="no linear output layer"):
        DeepSight(samples=8)(x, context(x, 0, model=model))


def pooled_rates(rows: list[dict[str, float]]) -> tuple[float, float]:
    """Recall and FPR pooled over a run's rounds."""
    tp, fn = sum(r["tp"] for r in rows), sum(r["fn"] for r in rows)
    fp, tn = sum(r["fp"] for r in rows), sum(r["tn"] for r in rows)
    return (tp / (tp + fn) if tp + fn else math.nan), fp / (fp + tn)


@pytest.mark.slow
def test_cli_without_attack_honest_noise_points_are_kept(tmp_path) -> None:
    """digits, 20 honest clients, 2 000 inputs per seed, 10 rounds: HDBSCAN leaves most IID
    updates unclustered; as singletons they are kept (FPR ≤ 0.1; measured 0.02–0.03 over
    seeds 0–2 with 20 000 inputs and 20 rounds), rejecting noise rejects ~half of them."""
    from fedpoison_testing import run_simulation

    base = ["attack=none", "threat.num_malicious=0", "defense=deepsight", "defense.samples=2000"]
    base += ["num_rounds=10", "progress=false"]
    kept = run_simulation(base, tmp_path / "singletons")["rounds"]
    rejected = run_simulation([*base, "defense.noise_singletons=false"], tmp_path / "reject")
    assert pooled_rates(kept)[1] <= 0.1 and pooled_rates(rejected["rounds"])[1] >= 0.3


@pytest.mark.slow
def test_cli_deepsight_rejects_most_scaling_attackers_at_a_low_fpr(tmp_path) -> None:
    """digits, 20 clients, 4 model-replacement attackers (`attack=scaling`), 2 000 inputs per
    seed, 10 rounds: most attackers are rejected at FPR ≤ 0.2, but the recall stays below the
    published 0.8 in this setting (docs/backdoors.md: 20 000 inputs, 20 rounds, seeds 0–2:
    recall 0.50–0.80 at FPR 0.02–0.10)."""
    from fedpoison_testing import run_simulation

    overrides = ["attack=scaling", "defense=deepsight", "defense.samples=2000", "num_rounds=10"]
    results = run_simulation([*overrides, "progress=false"], tmp_path)
    recall, fpr = pooled_rates(results["rounds"])
    assert recall >= 0.5 and fpr <= 0.2


def test_strategy_without_the_model_is_refused() -> None:
    from fedpoison import RobustStrategy

    with pytest.raises(ValueError, match=r"deepsight runs the clients' models: pass model="):
        RobustStrategy(DeepSight())
    net = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
    strategy = RobustStrategy(DeepSight(), model=FlatModel(net, (1, 2, 2)))
    assert strategy.server.model is not None
