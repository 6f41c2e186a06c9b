"""Edge-case backdoor (REFERENCES D34): the shared checks, the edge set (the PCA tail,
disjoint halves, only test-split images) and its poisoning."""

from __future__ import annotations

import math

import pytest
import torch
from attack_tester import DataAttackTester, client_round

from fedpoison.attacks import EdgeCase, edge_split
from fedpoison.attacks.pgd import Projection


class TestEdgeCase(DataAttackTester):
    attack = EdgeCase
    params = {"q": 0.5, "eps": 0.1}


def test_edge_set_is_the_farthest_tail_split_in_disjoint_halves() -> None:
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(200, 1, 8, 8, generator=g), torch.randint(0, 10, (200,), generator=g)
    train, test = edge_split(x, y, 7, 0.2, 5, 0)
    members = torch.nonzero(y == 7).flatten()
    size = math.ceil(0.2 * members.numel())
    assert len(train) + len(test) == size and not set(train.tolist()) & set(test.tolist())
    assert torch.all(y[train] == 7) and torch.all(y[test] == 7)
    # naive: PCA by eigen-decomposition of the class covariance, distance in 5 components
    pts = x[members].reshape(len(members), -1).double()
    centred = pts - pts.mean(0)
    _, vecs = torch.linalg.eigh(centred.T @ centred)
    dist = (centred @ vecs[:, -5:]).norm(dim=1)
    naive = set(members[torch.argsort(dist, descending=True)[:size]].tolist())
    assert set(train.tolist()) | set(test.tolist()) == naive


def test_poison_replaces_a_mix_with_edge_images_and_success_is_the_other_half() -> None:
    g = torch.Generator().manual_seed(1)
    x, y = torch.rand(100, 1, 8, 8, generator=g), torch.randint(0, 10, (100,), generator=g)
    attack = EdgeCase(q=0.6, mix=0.25, components=3)
    bound = attack.for_client(client_round(x, y))
    px, py = bound.poison(x, y, 10, torch.Generator().manual_seed(0))
    changed = (px != x).flatten(1).any(dim=1)
    assert int(changed.sum()) <= 25 and torch.all(py[changed] == 1)
    train, test = attack.split(x, y)
    edge = {tuple(x[i].flatten().tolist()) for i in train.tolist()}
    assert all(tuple(row.flatten().tolist()) in edge for row in px[changed])
    sx, sy = attack.success_set(x, y)
    assert torch.equal(sx, x[test]) and torch.all(sy == 1)
    assert isinstance(bound.shaping(client_round(x, y)), Projection)
    assert EdgeCase(eps=None).shaping(client_round(x, y)) is None


def test_edge_case_errors() -> None:
    with pytest.raises(ValueError, match="differ"):
        EdgeCase(source=1, target=1)
    with pytest.raises(ValueError, match="for_client"):
        EdgeCase().poison(
            torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.int64), 10, torch.Generator()
        )
    x, y = torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.int64)
    import dataclasses

    with pytest.raises(ValueError, match="needs the dataset"):
        EdgeCase().for_client(dataclasses.replace(client_round(x, y), dataset=None))
