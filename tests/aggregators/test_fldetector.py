"""FLDetector: the shared rule checks; the compact L-BFGS product against the explicit BFGS
recursion and the Hessian of a tiny quadratic (REFERENCES D37); the exact 1-D k-means and the
gap statistic; detection of a consistent outlier and the state across rounds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from rule_tester import RuleTester, context, data

from fedpoison.aggregators import lbfgs_hvp
from fedpoison.aggregators._kmeans1d import gap_statistic, kmeans_1d
from fedpoison.aggregators.fldetector import FLDetector


class TestFLDetector(RuleTester):
    rule = FLDetector


def bfgs_naive(s: np.ndarray, y: np.ndarray) -> np.ndarray:
    """B₀ = σI with σ = y_Nᵀs_N / s_Nᵀs_N, then B ← B − B s sᵀ B / (sᵀ B s) + y yᵀ / (yᵀ s)
    over the pairs, oldest first."""
    sigma = y[-1] @ s[-1] / (s[-1] @ s[-1])
    b = sigma * np.eye(s.shape[1])
    for sj, yj in zip(s, y, strict=True):
        bs = b @ sj
        b = b - np.outer(bs, bs) / (sj @ bs) + np.outer(yj, yj) / (yj @ sj)
    return b


def quadratic(d: int, seed: int) -> np.ndarray:
    """A random symmetric positive-definite Hessian A (f(w) = ½ wᵀAw, so y = A s)."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(d, d))
    return q @ q.T + d * np.eye(d)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), d=st.integers(3, 8), pairs=st.integers(1, 4))
def test_compact_lbfgs_is_the_bfgs_recursion(seed, d, pairs) -> None:
    pairs = min(pairs, d - 1)
    a = quadratic(d, seed)
    rng = np.random.default_rng(seed + 1)
    s = rng.normal(size=(pairs, d))
    y = s @ a  # y_j = A s_j
    v = rng.normal(size=d)
    t = torch.from_numpy
    got = lbfgs_hvp(t(s), t(y), t(v)).numpy()
    np.testing.assert_allclose(got, bfgs_naive(s, y) @ v, rtol=1e-8, atol=1e-8)
    # secant condition: Ĥ s_N = y_N
    np.testing.assert_allclose(lbfgs_hvp(t(s), t(y), t(s[-1])).numpy(), y[-1], rtol=1e-8)


def test_isotropic_hessian_is_exact() -> None:
    """A = a·I: Ĥv = a·v for any v."""
    rng = np.random.default_rng(0)
    s = torch.from_numpy(rng.normal(size=(4, 6)))
    v = torch.from_numpy(rng.normal(size=6))
    torch.testing.assert_close(lbfgs_hvp(s, 2.5 * s, v), 2.5 * v, rtol=1e-10, atol=1e-10)


def test_approximation_is_not_the_hessian_on_a_general_quadratic() -> None:
    """With d pairs on a general A the product differs from A v (REFERENCES D37): L-BFGS is an
    approximation, not a solve."""
    a = quadratic(6, 3)
    rng = np.random.default_rng(4)
    s = rng.normal(size=(6, 6))
    v = rng.normal(size=6)
    got = lbfgs_hvp(torch.from_numpy(s), torch.from_numpy(s @ a), torch.from_numpy(v)).numpy()
    np.testing.assert_allclose(got, bfgs_naive(s, s @ a) @ v, rtol=1e-6)
    assert np.linalg.norm(got - a @ v) / np.linalg.norm(a @ v) > 1e-3


def test_dependent_pairs_do_not_fail() -> None:
    s = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    out = lbfgs_hvp(s, 3 * s, torch.tensor([1.0, 1.0], dtype=torch.float64))
    assert bool(torch.isfinite(out).all())


def kmeans_brute(x: list[float], k: int) -> float:
    """Smallest within-cluster sum of squares over every assignment to k clusters."""
    best = float("inf")
    for labels in itertools.product(range(k), repeat=len(x)):
        if len(set(labels)) < k:
            continue
        total = 0.0
        for c in range(k):
            pts = [v for v, lab in zip(x, labels, strict=True) if lab == c]
            mu = sum(pts) / len(pts)
            total += sum((p - mu) ** 2 for p in pts)
        best = min(best, total)
    return best


@settings(max_examples=30, deadline=None)
@given(x=st.lists(st.floats(-10, 10), min_size=2, max_size=6), k=st.integers(1, 3))
def test_kmeans_1d_is_optimal(x, k) -> None:
    k = min(k, len(x))
    w, labels = kmeans_1d(np.array(x), k)
    assert w == pytest.approx(kmeans_brute(x, k), rel=1e-9, abs=1e-9)
    assert set(labels.tolist()) == set(range(k))


def test_gap_statistic_separates_two_groups_only() -> None:
    rng = np.random.default_rng(0)
    refs = rng.uniform(size=(10, 20))
    two = np.r_[rng.normal(0.0, 0.01, 16), rng.normal(1.0, 0.01, 4)]
    assert gap_statistic(two, refs) >= 2
    assert gap_statistic(rng.uniform(size=20), refs) == 1
    assert gap_statistic(np.ones(20), refs) == 1


def run_rounds(rule: FLDetector, rounds: int, n: int = 10, outlier: bool = True, seed: int = 0):
    """Rounds of a noisy linear-regression-like process: every client sends the same drift
    plus small noise; client 0 (if ``outlier``) sends a fresh large random update each round."""
    g = torch.Generator().manual_seed(seed)
    w = torch.zeros(5, dtype=torch.float64)
    results = []
    for t in range(1, rounds + 1):
        x = -0.1 * w + 0.3 + 0.01 * torch.randn(n, 5, generator=g, dtype=torch.float64)
        if outlier:
            x[0] = 3.0 * torch.randn(5, generator=g, dtype=torch.float64)
        ctx = context(x, 0, seed=t, global_weights=w.clone(), server_round=t)
        result = rule(x, ctx)
        results.append(result)
        w = w + result.aggregate
    return results


def test_a_consistent_outlier_is_detected_and_excluded_from_then_on() -> None:
    rule = FLDetector(window=3)
    results = run_rounds(rule, 12)
    first = next(i for i, r in enumerate(results) if float(r.weights[0]) == 0.0)
    assert first >= 4  # needs the window of pairs, then a window of distances
    assert all(float(r.weights[0]) == 0.0 for r in results[first:])
    assert all(bool((r.weights[1:] > 0).all()) for r in results)
    assert rule.detected == {0}
    assert results[-1].info["detected"] == 1.0


def test_without_attack_nobody_is_detected() -> None:
    rule = FLDetector(window=3)
    results = run_rounds(rule, 12, outlier=False)
    assert not rule.detected and all(bool((r.weights > 0).all()) for r in results)


def test_state_round_trip_over_many_rounds() -> None:
    a, b = FLDetector(window=3), FLDetector(window=3)
    run_rounds(a, 6)
    b.load_state_dict(a.state_dict())
    assert b.state_dict()["detected"] == a.state_dict()["detected"]
    x = data(10, 5, seed=9)
    ctx = context(x, 0, global_weights=torch.ones(5, dtype=torch.float64), server_round=7)
    ra, rb = a(x, ctx), b(x, ctx)
    assert torch.equal(ra.aggregate, rb.aggregate) and torch.equal(ra.weights, rb.weights)


def test_client_ids_are_required() -> None:
    x = data(4)
    with pytest.raises(ValueError, match="fldetector: needs 4 distinct client ids"):
        FLDetector()(x, context(x, 0, client_ids=()))


@pytest.mark.slow
def test_cli_fldetector_detects_scaling_attackers(tmp_path) -> None:
    """digits, 20 clients, 4 model-replacement attackers (`attack=scaling`), window 5: from
    round 2·5+1 on every attacker is rejected (recall 1) and no honest client (FPR 0)."""
    from fedpoison_testing import run_simulation

    overrides = ["attack=scaling", "defense=fldetector", "defense.window=5", "num_rounds=14"]
    results = run_simulation([*overrides, "progress=false"], tmp_path)
    rows = results["rounds"]
    assert all(r["tp"] == 0 for r in rows[:10])  # no scores before the window is full
    assert all(r["recall"] == 1.0 and r["fpr"] == 0.0 for r in rows[10:])


@pytest.mark.slow
def test_cli_fldetector_official_setting_attack_after_the_warm_up(tmp_path) -> None:
    """The official MNIST setting (REFERENCES D37: detection after the warm-up, attacks only
    afterwards) with the default window 10: attacked from round 12, the first predicted
    round; nobody is scored before round 21, from then on every attacker is rejected at
    FPR ≤ 0.2 (docs/backdoors.md: seeds 0–2, FPR 0–0.075 over rounds 21–40)."""
    from fedpoison_testing import run_simulation

    overrides = ["attack=scaling", "defense=fldetector", "threat.start_round=12"]
    results = run_simulation([*overrides, "num_rounds=24", "progress=false"], tmp_path)
    rows = results["rounds"]
    assert all(r["tp"] == 0 and r["fp"] == 0 for r in rows[:20])
    scored = rows[20:]
    fp, tn = sum(r["fp"] for r in scored), sum(r["tn"] for r in scored)
    assert all(r["recall"] == 1.0 for r in scored) and fp / (fp + tn) <= 0.2


@pytest.mark.slow
def test_killed_run_resumes_bit_identical(tmp_path) -> None:
    """The window, the scores and the detected set go through the checkpoint: a run killed
    after a checkpoint and resumed ends with the rows of an uninterrupted run (detection
    happens after the kill)."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    args = ["attack=scaling", "defense=fldetector", "defense.window=3", "num_rounds=12"]
    args += ["checkpoint_every=3", "progress=false"]

    def cmd(run_dir, *extra):
        return [sys.executable, "-m", "fedpoison", *args, f"hydra.run.dir={run_dir}", *extra]

    def rows(run_dir):
        out = json.loads((run_dir / "results.json").read_text())["rounds"]
        return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in out]

    subprocess.run(cmd(tmp_path / "whole"), check=True, capture_output=True, timeout=600)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd(killed), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while not (killed / "checkpoint.pt").exists():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = subprocess.run(cmd(killed, "resume=true"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    resumed = json.loads((killed / "results.json").read_text())["provenance"]
    assert resumed["resumed_after_round"] in (3, 6, 9)  # killed mid-run, not after the end
    whole = rows(tmp_path / "whole")
    assert any(r["tp"] > 0 for r in whole)  # the detection is part of what must match
    assert rows(killed) == whole
