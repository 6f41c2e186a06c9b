"""Update attacks under ``threat.knowledge=own``: the attackers see only their own honest updates.

Each own-knowledge variant is checked against its paper (docs/conventions.md: §C19 ALIE,
§C21 Min-Max / Min-Sum, §C23 Fang-Trim partial knowledge, §C24 Gaussian, §C26 scaling; §C2
and §C4) and shown to move its target rule's aggregate in the published direction, given ONLY
the own updates.

Data: ``n`` honest updates drawn i.i.d. from a Gaussian around a positive mean direction; the
first ``m`` rows are the attackers' own honest updates, the rest the benign ones. The "clean"
aggregate is the rule on all ``n`` honest rows (no attack); the attacked one replaces the own
rows with the crafted rows. Delta convention (``w ← w + η·Agg(Δ)``, ``Δ ≈ −lr·g``) throughout.

The direction checks are one-sided with a clear margin, so a sign-flipped implementation
(crafted rows on the benign side instead of against it) fails them.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.aggregators import krum, mean, median, trimmed_mean
from fedpoison.attacks import (
    ALIE,
    IPM,
    Adaptive,
    AdversaryView,
    AttackSpec,
    FangTrim,
    Gaussian,
    MinMax,
    MinSum,
    Scaling,
    SignFlip,
    ThreatModel,
    UpdateAttack,
    build_view,
    check_attack,
)
from fedpoison.attacks.shejwalkar import perturbation_vector


def _draw(
    n: int, m: int, d: int, seed: int, scale: float = 0.1
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(own (m, d), benign (n − m, d))``: i.i.d. ``N(μ, scale²·I)`` rows with a positive
    mean direction ``μ_j ∈ scale·[0.5, 1.5)`` (float64, seeded generator)."""
    g = torch.Generator().manual_seed(seed)
    mu = scale * (0.5 + torch.rand(d, generator=g, dtype=torch.float64))
    rows = mu + scale * torch.randn(n, d, generator=g, dtype=torch.float64)
    return rows[:m], rows[m:]


def _view(
    own: torch.Tensor,
    benign: torch.Tensor,
    seed: int = 0,
    knowledge: str = "own",
    server_lr: float = 1.0,
) -> AdversaryView:
    """The view the strategy hands the adversary (``build_view``, the only sanctioned path)."""
    view = build_view(
        own,
        benign,
        threat=ThreatModel(knowledge=knowledge),  # type: ignore[arg-type]
        global_weights=torch.zeros(own.shape[1], dtype=own.dtype),
        server_lr=server_lr,
        generator=torch.Generator().manual_seed(seed),
    )
    if knowledge == "own":
        assert view.benign is None  # the attack really sees only its own rows
    return view


def _rules(m: int) -> dict[str, object]:
    """Target rules with the declared f = m (docs/conventions.md §C5); trimmed mean trims b = f."""
    return {
        "trimmed_mean": lambda x: trimmed_mean(x, m),
        "median": median,
        "krum": lambda x: krum(x, m),
        "mean": mean,
    }


def _aggregates(
    rule: str, m: int, own: torch.Tensor, crafted: torch.Tensor, benign: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(clean, attacked)`` aggregates of ``rule``: honest own rows vs crafted rows."""
    agg = _rules(m)[rule]
    return agg(torch.cat([own, benign])), agg(torch.cat([crafted, benign]))  # type: ignore[operator]


# --------------------------------------------------------------------------------------------
# Which attacks run on own updates only, and which are refused under knowledge=own.
# --------------------------------------------------------------------------------------------

OWN_VARIANTS: list[tuple[str, UpdateAttack, bool]] = [
    # (id, attack, ignores the benign rows even when the view grants them)
    ("fang_trim-own", FangTrim(knowledge="own"), True),
    ("alie-own", ALIE(stat_source="own"), True),
    ("alie-known", ALIE(stat_source="known"), False),
    ("min_max-own-unit_vec", MinMax("unit_vec", knowledge="own"), True),
    ("min_max-own-std", MinMax("std", knowledge="own"), True),
    ("min_max-own-sign", MinMax("sign", knowledge="own"), True),
    ("min_sum-own-max", MinSum("unit_vec", knowledge="own", bound="max"), True),
    ("min_sum-own-min", MinSum("unit_vec", knowledge="own", bound="min"), True),
    ("gaussian-fang", Gaussian(mode="fang"), False),
    ("sign_flip", SignFlip(scale=4.0), True),
    ("scaling", Scaling(), True),
]


@pytest.mark.parametrize(
    ("attack", "ignores_benign"),
    [pytest.param(a, i, id=name) for name, a, i in OWN_VARIANTS],
)
def test_own_variant_accepted_and_blind_to_benign(
    attack: UpdateAttack, ignores_benign: bool
) -> None:
    """Every own variant passes ``check_attack`` under knowledge=own, crafts from a view
    without benign rows, and (explicit ``own`` sources) gives the same rows when the view
    does grant the benign ones: the statistics come from the own updates only."""
    assert attack.required_knowledge() == "own"
    assert not attack.requires_defense()
    check_attack(AttackSpec("t", None, attack), ThreatModel(knowledge="own"))
    own, benign = _draw(14, 4, 9, seed=3)
    rows = attack.craft(_view(own, benign, seed=5)).updates
    assert rows.shape == own.shape and bool(torch.isfinite(rows).all())
    if ignores_benign:
        shifted = benign + 7.0  # a leak of the benign rows would show at once
        again = attack.craft(_view(own, shifted, seed=5, knowledge="all")).updates
        assert torch.equal(rows, again)


@pytest.mark.parametrize(
    "attack",
    [
        pytest.param(FangTrim(knowledge="all"), id="fang_trim-all"),
        pytest.param(MinMax(knowledge="all"), id="min_max-all"),
        pytest.param(MinSum(knowledge="all"), id="min_sum-all"),
        pytest.param(ALIE(stat_source="benign"), id="alie-benign"),
        pytest.param(IPM(), id="ipm"),
        pytest.param(Adaptive(), id="adaptive"),
    ],
)
def test_benign_knowledge_variants_refused_under_own(attack: UpdateAttack) -> None:
    """Variants that need the benign updates (paper full knowledge; IPM's benign mean, §C20;
    the AGR-tailored attack's benign mean, §C21) are rejected before round 1."""
    assert attack.required_knowledge() == "all"
    with pytest.raises(ValueError, match="needs threat.knowledge=all"):
        check_attack(
            AttackSpec("t", None, attack), ThreatModel(knowledge="own", knows_defense=True)
        )


# --------------------------------------------------------------------------------------------
# Fang-Trim, partial knowledge (Fang et al. 2020 §3.4; docs/conventions.md §C23)
# --------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    c=st.integers(2, 7),
    d=st.integers(1, 6),
    values=st.lists(
        st.floats(-50.0, 50.0, allow_nan=False, allow_infinity=False), min_size=42, max_size=42
    ),
    seed=st.integers(0, 2**31 - 1),
)
def test_fang_trim_partial_positions(c: int, d: int, values: list[float], seed: int) -> None:
    """Fang et al.'s partial knowledge (§C23), translated to deltas: μ_j, σ_j of the c own
    updates; s̃ = sign(own mean) (models − w_Re = deltas); s̃_j = −1 ⇒ every crafted value in
    [μ_j+3σ_j, μ_j+4σ_j]; s̃_j = +1 ⇒ in [μ_j−4σ_j, μ_j−3σ_j], i.e. always 3–4 σ against the
    estimated direction. σ is the population std of the own rows (the module's documented
    estimator)."""
    own = torch.tensor(values[: c * d], dtype=torch.float64).reshape(c, d)
    benign = torch.zeros(1, d, dtype=torch.float64)
    rows = FangTrim(knowledge="own").craft(_view(own, benign, seed=seed)).updates
    mu, sigma = own.mean(0), own.std(0, correction=0)
    tol = 1e-9 * (1.0 + mu.abs() + sigma)
    above = (rows >= mu + 3 * sigma - tol) & (rows <= mu + 4 * sigma + tol)
    below = (rows >= mu - 4 * sigma - tol) & (rows <= mu - 3 * sigma + tol)
    s = torch.sign(mu).expand_as(rows)
    assert bool(above[s < 0].all()), "s̃ = −1 must give values in [μ+3σ, μ+4σ]"
    assert bool(below[s > 0].all()), "s̃ = +1 must give values in [μ−4σ, μ−3σ]"
    assert bool((above | below)[s == 0].all())  # s̃ undefined: either side is acceptable


@pytest.mark.parametrize("rule", ["trimmed_mean", "median"])
@pytest.mark.parametrize("seed", range(3))
def test_fang_trim_partial_directed_deviation(rule: str, seed: int) -> None:
    """Fang's objective is the directed deviation sᵀ(w − w′) with s the no-attack direction
    (here the sign of the benign mean). With only c own updates, the partial attack must make
    it clearly positive for the rules it targets (trimmed mean, median)."""
    n, m, d = 25, 6, 100
    own, benign = _draw(n, m, d, seed)
    crafted = FangTrim(knowledge="own").craft(_view(own, benign, seed=seed)).updates
    clean, attacked = _aggregates(rule, m, own, crafted, benign)
    s = torch.sign(benign.mean(0))
    deviation = float(s @ (clean - attacked))
    assert deviation > 0.15 * float(s @ clean), (rule, deviation, float(s @ clean))
    # every crafted value lies against the direction the own updates estimate (s̃)
    s_own = torch.where(own.mean(0) < 0, -1.0, 1.0).to(own.dtype)
    assert bool(((crafted - own.mean(0)) * s_own < 0).all())


# --------------------------------------------------------------------------------------------
# ALIE with own statistics (Baruch et al. 2019, Algorithm 3; docs/conventions.md §C19)
# --------------------------------------------------------------------------------------------


def _naive_z_max(n: int, m: int) -> float:
    from scipy.stats import norm

    s = math.floor(n / 2 + 1) - m
    return float(norm.ppf((n - m - s) / (n - m)))


@pytest.mark.parametrize("stat_source", ["own", "known"])
@pytest.mark.parametrize("seed", range(3))
def test_alie_own_statistics_shift_aggregate(stat_source: str, seed: int) -> None:
    """ALIE (§C19) with the official code's statistics source (own updates, population std)
    and z_max from (n, m) of the round: every attacker sends μ_own + z_max·σ_own (delta form of the
    official ``mean − z·std`` on gradients). FedAvg then moves by exactly (m/n)·z·σ_own and the
    trimmed mean by a clear positive amount along σ_own; sign −1 would move it the other way."""
    n, m, d = 25, 6, 200
    own, benign = _draw(n, m, d, seed)
    crafted = ALIE(stat_source=stat_source).craft(_view(own, benign, seed=seed)).updates  # type: ignore[arg-type]
    z = _naive_z_max(n, m)
    assert z == pytest.approx(0.336, abs=1e-3)
    mu, sigma = own.mean(0), own.std(0, correction=0)
    torch.testing.assert_close(crafted, (mu + z * sigma).expand(m, d))

    clean, attacked = _aggregates("mean", m, own, crafted, benign)
    torch.testing.assert_close(attacked - clean, (m / n) * z * sigma)

    clean, attacked = _aggregates("trimmed_mean", m, own, crafted, benign)
    along = float((attacked - clean) @ sigma)
    assert along > 0.5 * (m / n) * z * float(sigma @ sigma), along


# --------------------------------------------------------------------------------------------
# Min-Max / Min-Sum with the own updates as reference set (Shejwalkar & Houmansadr 2021,
# "unknown benign gradients" notebooks; docs/conventions.md §C21)
# --------------------------------------------------------------------------------------------


def _gamma(own: torch.Tensor, crafted_row: torch.Tensor, p: torch.Tensor) -> float:
    """γ such that ``crafted_row = mean(own) − γ·p``."""
    return float((own.mean(0) - crafted_row).norm() / p.norm())


@settings(max_examples=30, deadline=None)
@given(
    c=st.integers(2, 7),
    d=st.integers(2, 8),
    seed=st.integers(0, 2**31 - 1),
    kind=st.sampled_from(["unit_vec", "std", "sign"]),
    attack=st.sampled_from(["min_max", "min_sum_max", "min_sum_min"]),
)
def test_shejwalkar_own_constraint_on_own_updates(
    c: int, d: int, seed: int, kind: str, attack: str
) -> None:
    """Partial knowledge: ∇_b, ∇_p and both sides of the γ constraint use the c own updates
    only. With O the own rows and Δ_m = mean(O) − γ*·∇_p:
    Min-Max ``max_{i∈O} ‖Δ_m − Δ_i‖² ≤ max_{i,j∈O} ‖Δ_i − Δ_j‖²``; Min-Sum
    ``Σ_{i∈O} ‖Δ_m − Δ_i‖² ≤ max|min_{i∈O} Σ_{j∈O} ‖Δ_i − Δ_j‖²``. γ* holds the constraint and
    is the largest such γ (a slightly larger γ violates it)."""
    own = torch.randn(c, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    own = own + 0.5  # positive mean direction
    benign = torch.zeros(3, d, dtype=torch.float64)
    if attack == "min_max":
        atk: UpdateAttack = MinMax(kind, knowledge="own")  # type: ignore[arg-type]
    else:
        atk = MinSum(kind, knowledge="own", bound=attack.rsplit("_", 1)[1])  # type: ignore[arg-type]
    crafted = atk.craft(_view(own, benign, seed=seed)).updates
    assert torch.equal(crafted, crafted[:1].expand_as(crafted))  # all m send ∇_m
    p = perturbation_vector(own, kind)  # type: ignore[arg-type]
    gamma = _gamma(own, crafted[0], p)
    pair = ((own[:, None, :] - own[None, :, :]) ** 2).sum(-1)

    def lhs(g: float) -> float:
        dist = ((own.mean(0) - g * p - own) ** 2).sum(-1)
        return float(dist.max()) if attack == "min_max" else float(dist.sum())

    if attack == "min_max":
        bound = float(pair.max())
    elif attack == "min_sum_max":
        bound = float(pair.sum(1).max())
    else:
        bound = float(pair.sum(1).min())
    assert gamma > 0
    assert lhs(gamma) <= bound * (1 + 1e-9) + 1e-12
    assert lhs(gamma + 1e-4) > bound


@pytest.mark.parametrize("rule", ["krum", "median", "trimmed_mean"])
@pytest.mark.parametrize("kind", ["unit_vec", "sign", "std"])
@pytest.mark.parametrize("attack", ["min_max", "min_sum"])
@pytest.mark.parametrize("seed", range(2))
def test_shejwalkar_own_moves_aggregate(rule: str, kind: str, attack: str, seed: int) -> None:
    """With only the own updates as reference, Min-Max / Min-Sum still move Krum, the median
    and the trimmed mean (targets in the paper) along −∇_p. For ``unit_vec`` and ``sign``
    (∇_p ∝ the benign direction) the aggregate's inner product with the benign mean drops by
    a clear margin; for ``std`` (paper ``∇_b − γ·std(∇)`` on gradients = ``Δ_b + γ·std(Δ)`` on
    deltas) it moves along +std(Δ_own). Against Krum the crafted row is the one selected."""
    n, m, d = 20, 8, 200
    own, benign = _draw(n, m, d, seed)
    cls = MinMax if attack == "min_max" else MinSum
    crafted = cls(kind, knowledge="own").craft(_view(own, benign, seed=seed)).updates  # type: ignore[arg-type]
    clean, attacked = _aggregates(rule, m, own, crafted, benign)
    if rule == "krum":
        assert torch.equal(attacked, crafted[0])
    if kind == "std":
        sd = own.std(0)
        assert float((attacked - clean) @ sd) > 0.3 * float(clean @ sd)
    else:
        b = benign.mean(0)
        assert float(attacked @ b) < 0.7 * float(clean @ b), (float(attacked @ b), float(clean @ b))


# --------------------------------------------------------------------------------------------
# Attacks that use only the attacker's own update by definition
# --------------------------------------------------------------------------------------------


def test_sign_flip_own_reverses_fedavg() -> None:
    """Sign flipping sends −scale·Δ_own (no statistics); with scale 4 and m = 8 of 20 the
    FedAvg aggregate points against the benign mean."""
    own, benign = _draw(20, 8, 50, seed=1)
    crafted = SignFlip(scale=4.0).craft(_view(own, benign)).updates
    torch.testing.assert_close(crafted, -4.0 * own)
    clean, attacked = _aggregates("mean", 8, own, crafted, benign)
    b = benign.mean(0)
    assert float(attacked @ b) < 0 < float(clean @ b)


def test_scaling_own_replaces_fedavg_model() -> None:
    """Model replacement (§C26): γ = n/η; when the benign deltas cancel, FedAvg's new model
    w + η·mean(Δ) is exactly the attacker's model w + Δ_own."""
    n, eta = 10, 0.5
    own, benign = _draw(n, 1, 30, seed=2)
    benign = benign - benign.mean(0)  # the benign updates sum to zero
    crafted = Scaling().craft(_view(own, benign, server_lr=eta)).updates
    torch.testing.assert_close(crafted, (n / eta) * own)
    step = eta * mean(torch.cat([crafted, benign]))
    torch.testing.assert_close(step, own[0])


def test_gaussian_fang_uses_own_statistics() -> None:
    """Fang-style Gaussian (§C24) under knowledge=own: N(μ_j, σ_j²) of the own updates."""
    g = torch.Generator().manual_seed(4)
    own = torch.tensor([1.0, -2.0, 0.5]) + torch.tensor([0.5, 2.0, 0.1]) * torch.randn(
        4000, 3, generator=g
    )
    benign = torch.full((5, 3), 100.0)
    rows = Gaussian(mode="fang").craft(_view(own, benign, seed=6)).updates
    mu, sigma = own.mean(0), own.std(0, correction=0)
    assert bool(((rows.mean(0) - mu).abs() < 5 * sigma / math.sqrt(4000)).all())
    torch.testing.assert_close(rows.std(0), sigma, rtol=0.08, atol=0.0)
