"""Mimic (Karimireddy et al. 2022): the shared attack checks per variant, copies bit for bit, a
naive transcription of the official target choice over warm-up rounds, the principal direction,
the frozen choice, and the aggregate pulled towards the mimicked client."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
from attack_tester import AttackTester, view
from fedpoison_testing import TINY, run_simulation
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.aggregators import median
from fedpoison.attacks import Mimic, mimic_attack
from fedpoison.attacks.mimic import mimic_init


class TestMimic(AttackTester):
    attack = Mimic


class TestMimicOwn(AttackTester):
    attack = Mimic
    params = {"knowledge": "own"}


class TestMimicFixedTarget(AttackTester):
    attack = Mimic
    params = {"target": 1}


def rand(k: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(k, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---------------------------------------------------------------------------- naive oracle
def dot(a: list[float], b: list[float]) -> float:
    return sum(p * q for p, q in zip(a, b, strict=True))


def unit(a: list[float]) -> list[float]:
    norm = math.sqrt(dot(a, a))
    return [v / norm for v in a]


def power(grads: list[list[float]], mu: list[float], z: list[float]) -> list[float]:
    cumu = [0.0] * len(mu)
    for g in grads:
        c = [a - b for a, b in zip(g, mu, strict=True)]
        w = dot(c, z)
        cumu = [s + w * v for s, v in zip(cumu, c, strict=True)]
    return cumu


def official_choices(rounds: list[torch.Tensor], z0: list[float], warmup: int) -> list[int]:
    """The official ``MimicVariantAttacker.omniscient_callback`` on gradients ``g = −Δ``."""
    t, mu, z, chosen, out = 0, [], z0, -1, []
    for deltas in rounds:
        grads = [[-v for v in row] for row in deltas.tolist()]
        avg = [sum(col) / len(grads) for col in zip(*grads, strict=True)]
        if t == 0:
            mu = avg
            z = unit(power(grads, mu, z0))
        elif t < warmup:
            mu = [t / (1 + t) * a + b / (1 + t) for a, b in zip(mu, avg, strict=True)]
            step = unit(power(grads, mu, z))
            z = unit([t / (1 + t) * a + b / (1 + t) for a, b in zip(z, step, strict=True)])
        if t < warmup:
            best = None
            for i, g in enumerate(grads):
                value = dot(g, z)
                if best is None or value > best:
                    best, chosen = value, i
        out.append(chosen)
        t += 1
    return out


@settings(max_examples=30, deadline=None)
@given(
    num_rounds=st.integers(1, 4),
    warmup=st.integers(1, 3),
    k=st.integers(3, 6),
    m=st.integers(1, 3),
    d=st.integers(1, 5),
    seed=st.integers(0, 2**16),
)
def test_auto_target_matches_the_official_procedure(
    num_rounds: int, warmup: int, k: int, m: int, d: int, seed: int
) -> None:
    rounds = [rand(k, d, seed + 10 * r) for r in range(num_rounds)]
    own = rand(m, d, seed + 1)
    z0 = torch.randn(d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    expected = official_choices(rounds, z0.tolist(), warmup)
    attack = Mimic(warmup=warmup)
    for r, (benign, index) in enumerate(zip(rounds, expected, strict=True)):
        rows = attack.craft(view(own, benign, seed=seed if r == 0 else seed + r)).updates
        assert torch.equal(rows, benign[index].expand(m, d)), (r, index)


@settings(max_examples=25, deadline=None)
@given(k=st.integers(1, 6), m=st.integers(1, 3), d=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_fixed_target_copies_that_row_bit_for_bit(k: int, m: int, d: int, seed: int) -> None:
    benign, own = rand(k, d, seed).float(), rand(m, d, seed + 1).float()
    for j in range(k):
        rows = Mimic(target=j).craft(view(own, benign)).updates
        assert torch.equal(rows, benign[j].expand(m, d))
        assert rows.data_ptr() != benign.data_ptr()
    mine = Mimic(target=m - 1, knowledge="own").craft(view(own, benign, knowledge="own")).updates
    assert torch.equal(mine, own[m - 1].expand(m, d))


def test_auto_picks_an_extreme_along_the_principal_direction() -> None:
    """Rows spread along e₁: z ≈ ±e₁ and i* is the row with the largest or smallest first
    coordinate, whichever ``⟨−Δ_i, z⟩`` ranks first."""
    g = torch.Generator().manual_seed(3)
    benign = torch.randn(9, 4, generator=g, dtype=torch.float64) * torch.tensor([10, 0.1, 0.1, 0.1])
    z0 = torch.randn(4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    _, z = mimic_init(benign, z0)
    assert abs(float(z[0])) > 0.99
    extreme = benign[:, 0].argmin() if z[0] > 0 else benign[:, 0].argmax()
    rows = Mimic().craft(view(torch.zeros(2, 4, dtype=torch.float64), benign)).updates
    assert torch.equal(rows, benign[extreme].expand(2, 4))


def test_choice_is_frozen_after_warmup_by_position() -> None:
    """After the warm-up the attackers copy the same candidate position (the view has no
    client ids), whatever the later rows say; a position beyond them is an error."""
    own = torch.zeros(2, 3, dtype=torch.float64)
    first = rand(6, 3, 0)
    attack = Mimic(warmup=1)
    chosen = int((attack.craft(view(own, first)).updates[0] == first).all(dim=1).nonzero()[0, 0])
    for seed in range(1, 4):
        later = rand(6, 3, seed)
        assert torch.equal(attack.craft(view(own, later, seed=seed)).updates[0], later[chosen])
    with pytest.raises(ValueError, match="mimic: target row"):
        attack.craft(view(own, rand(chosen, 3, 9)))


def _with_ids(v, ids: tuple[int, ...]):
    return dataclasses.replace(v, benign_ids=ids)


def test_choice_follows_the_client_id_when_its_row_moves() -> None:
    """i* is a client id: when other clients join or leave, the attackers still copy it; in a
    round without it they copy that round's argmax and return to i* afterwards."""
    own = torch.zeros(2, 3, dtype=torch.float64)
    first = rand(4, 3, 0)
    attack = Mimic(warmup=1)
    crafted = attack.craft(_with_ids(view(own, first), (10, 11, 12, 13))).updates[0]
    chosen = (10, 11, 12, 13)[int((crafted == first).all(dim=1).nonzero()[0, 0])]
    later = rand(5, 3, 1)
    ids = (1, 2, chosen, 20, 21)
    out = attack.craft(_with_ids(view(own, later, seed=1), ids)).updates[0]
    assert torch.equal(out, later[2])
    absent = rand(3, 3, 2)
    out = attack.craft(_with_ids(view(own, absent, seed=2), (1, 2, 3))).updates[0]
    assert torch.equal(out, absent[int(torch.argmax(-(absent @ attack._z)))])
    again = rand(2, 3, 3)
    out = attack.craft(_with_ids(view(own, again, seed=3), (chosen, 99))).updates[0]
    assert torch.equal(out, again[0])


def test_state_dict_restores_the_choice_and_direction() -> None:
    own = torch.zeros(1, 4, dtype=torch.float64)
    rounds = [rand(5, 4, s) for s in range(4)]
    ids = (0, 2, 4, 6, 8)
    whole, first = Mimic(warmup=3), Mimic(warmup=3)
    for r in rounds[:2]:
        whole.craft(_with_ids(view(own, r), ids))
        first.craft(_with_ids(view(own, r), ids))
    resumed = Mimic(warmup=3)
    resumed.load_state_dict(first.state_dict())
    for seed, r in enumerate(rounds[2:], start=2):
        expected = whole.craft(_with_ids(view(own, r, seed=seed), ids)).updates
        assert torch.equal(resumed.craft(_with_ids(view(own, r, seed=seed), ids)).updates, expected)
    assert Mimic().state_dict() == {"rounds": 0, "chosen": 0}


def test_resumed_run_keeps_the_mimicked_client(tmp_path: Path) -> None:
    base = [
        *TINY, "attack=mimic", "threat.num_malicious=2", "defense=median",
        "partition=dirichlet", "partition.alpha=0.3", "federation.clients_per_round=5",
    ]  # fmt: skip
    run_simulation([*base, "num_rounds=2", "checkpoint_every=2"], tmp_path / "short")
    resumed = run_simulation(
        [*base, "num_rounds=5", "checkpoint_every=2", "resume=true"], tmp_path / "short"
    )
    whole = run_simulation([*base, "num_rounds=5", "checkpoint_every=0"], tmp_path / "whole")
    assert [r["loss"] for r in resumed["rounds"]] == [r["loss"] for r in whole["rounds"]]


def test_aggregate_moves_towards_the_mimicked_client() -> None:
    """The published effect: the round's median is pulled towards the mimicked update
    (coordinate-wise: replacing values by v never moves a median away from v), strictly on
    this heterogeneous case, for the benign and the own-knowledge variants."""
    g = torch.Generator().manual_seed(1)
    benign = torch.cat(
        [torch.randn(4, 5, generator=g) + 3.0, torch.randn(4, 5, generator=g) - 3.0]
    ).double()
    own = torch.randn(3, 5, generator=g, dtype=torch.float64) - 3.0
    clean = median(torch.cat([own, benign]))
    for knowledge, pool in (("all", benign), ("own", own)):
        rows = Mimic(knowledge=knowledge).craft(view(own, benign, knowledge=knowledge)).updates
        target = rows[0]
        assert any(torch.equal(target, row) for row in pool)
        attacked = median(torch.cat([rows, benign]))
        assert bool(((attacked - target).abs() <= (clean - target).abs() + 1e-12).all())
        assert float((attacked - target).norm()) < float((clean - target).norm())


def test_median_never_moves_away_from_the_copied_row() -> None:
    @settings(max_examples=40, deadline=None)
    @given(k=st.integers(3, 8), m=st.integers(1, 3), seed=st.integers(0, 2**16))
    def check(k: int, m: int, seed: int) -> None:
        benign, own = rand(k, 4, seed), rand(m, 4, seed + 1)
        rows = Mimic().craft(view(own, benign, seed=seed)).updates
        clean, attacked = median(torch.cat([own, benign])), median(torch.cat([rows, benign]))
        assert bool(((attacked - rows[0]).abs() <= (clean - rows[0]).abs() + 1e-12).all())

    check()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target": -1}, "target must be 'auto' or an integer"),
        ({"target": "first"}, "target must be 'auto' or an integer"),
        ({"warmup": 0}, "warmup must be an integer ≥ 1"),
        ({"knowledge": "some"}, "knowledge must be 'own' or 'all'"),
    ],
)
def test_constructor_errors_name_the_attack_and_field(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"mimic: {message}"):
        Mimic(**kwargs)


def test_mimic_attack_refuses_a_missing_row() -> None:
    with pytest.raises(ValueError, match="target row 3 is not among the round's 3 candidates"):
        mimic_attack(torch.zeros(3, 2), 1, 3)
