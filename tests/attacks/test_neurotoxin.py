"""Neurotoxin (REFERENCES D32): the shared checks, the mask against the worked example and a
sort-based oracle, training confined to the mask, and the two benign estimates."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from attack_tester import DataAttackTester, client_round
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.attacks import Neurotoxin, neurotoxin_mask
from fedpoison.attacks.neurotoxin import clean_gradient
from fedpoison.attacks.shaping import flat
from fedpoison.training.local import LocalTraining, local_train


class TestNeurotoxin(DataAttackTester):
    attack = Neurotoxin


class TestNeurotoxinProjected(DataAttackTester):
    attack = Neurotoxin
    params = {"keep_ratio": 0.5, "per_layer": True, "eps": 0.1}


def test_worked_example() -> None:
    g = torch.tensor([0.5, -0.1, 0.02, -2.0, 0.3])
    assert neurotoxin_mask(g, 0.6).int().tolist() == [0, 1, 1, 0, 1]  # not FLPoison's 0,1,1,1,0


@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=30, unique=True),
    ratio=st.floats(0, 1),
)
def test_mask_equals_a_sort_based_oracle(values: list[float], ratio: float) -> None:
    g = torch.tensor(values)  # float32: magnitudes compared as the mask sees them
    magnitudes = g.abs().tolist()
    if len(set(magnitudes)) < len(magnitudes):
        return  # ties in |g| (also from float32 underflow): any choice among them is right
    keep = int(ratio * len(values))
    order = sorted(range(len(values)), key=lambda j: magnitudes[j])
    naive = [j in order[:keep] for j in range(len(values))]
    assert neurotoxin_mask(g, ratio).tolist() == naive


def test_training_moves_only_the_kept_coordinates() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(32, 1, 8, 8, generator=g), torch.randint(0, 10, (32,), generator=g)
    client = client_round(x, y)
    attack = Neurotoxin(keep_ratio=0.3)
    start = flat(client.parameters())
    mask = torch.cat([m.reshape(-1) for m in attack.masks(clean_gradient(client))]).bool()
    shaping = attack.shaping(client)
    px, py = attack.poison(x, y, 10, torch.Generator().manual_seed(1))
    cfg = LocalTraining(lr=0.5, batch_size=8, local_steps=6)
    local_train(client.model, px, py, cfg, torch.Generator(), torch.device("cpu"), shaping)  # type: ignore[arg-type]
    delta = flat(client.parameters()) - start
    assert torch.all(delta[~mask] == 0) and bool((delta[mask] != 0).any())
    assert int(mask.sum()) == int(0.3 * mask.numel())


def test_global_diff_ranks_the_previous_change_and_falls_back_to_the_clean_gradient() -> None:
    x, y = torch.rand(16, 1, 8, 8), torch.randint(0, 10, (16,))
    client = client_round(x, y)
    attack = Neurotoxin(benign_estimate="global_diff", keep_ratio=0.5)
    assert attack.needs_previous_global() and not Neurotoxin().needs_previous_global()
    previous = tuple(p.detach() - torch.randn_like(p) for p in client.parameters())
    with_previous = dataclasses.replace(client, previous_global=previous)
    change = [p.detach() - q for p, q in zip(client.parameters(), previous, strict=True)]
    assert all(torch.equal(a, b) for a, b in zip(attack.benign(with_previous), change, strict=True))
    fallback = attack.benign(client)
    assert all(torch.allclose(a, b) for a, b in zip(fallback, clean_gradient(client), strict=True))


def test_neurotoxin_errors() -> None:
    for bad in ({"keep_ratio": 1.5}, {"benign_estimate": "mean"}, {"eps": 0.0}):
        with pytest.raises(ValueError, match="neurotoxin"):
            Neurotoxin(**bad)  # type: ignore[arg-type]
