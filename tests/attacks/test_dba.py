"""DBA (REFERENCES D30): the shared checks, the trigger split against a naive oracle, the
piece by rank and the named success sets."""

from __future__ import annotations

import pytest
import torch
from attack_tester import DataAttackTester, client_round
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.attacks import DBA, dba_pieces
from fedpoison.clients import malicious_round

DIGITS = {"piece_shape": (1, 3), "gap": 1}


class TestDBA(DataAttackTester):
    attack = DBA
    params = DIGITS


def test_official_mnist_and_cifar_layouts() -> None:
    mnist = DBA().mask(28, 28, None)
    assert sorted(map(tuple, torch.nonzero(mnist).tolist())) == sorted(
        (r, c) for r in (0, 3) for c in [*range(4), *range(6, 10)]
    )
    cifar = dba_pieces((1, 6), 3, (2, 2))
    assert cifar == [(0, 0, 1, 6), (0, 9, 1, 6), (4, 0, 1, 6), (4, 9, 1, 6)]


@settings(max_examples=30, deadline=None)
@given(
    h=st.integers(1, 3),
    w=st.integers(1, 4),
    gap=st.integers(0, 2),
    rows=st.integers(1, 3),
    cols=st.integers(1, 3),
)
def test_local_masks_are_disjoint_and_their_union_is_the_global_mask(
    h: int, w: int, gap: int, rows: int, cols: int
) -> None:
    attack = DBA(piece_shape=(h, w), gap=gap, grid=(rows, cols))
    size = 3 * (max(h, w) + gap) + 1
    local = [attack.mask(size, size, k) for k in range(rows * cols)]
    union = torch.zeros(size, size, dtype=torch.bool)
    for k, m in enumerate(local):
        assert int(m.sum()) == h * w
        assert not (union & m).any(), k  # pairwise disjoint
        union |= m
    naive = torch.zeros(size, size, dtype=torch.bool)
    for i in range(rows):
        for j in range(cols):
            for r in range(h):
                for c in range(w):
                    naive[i * (h + gap) + r, j * (w + gap) + c] = True
    assert torch.equal(union, naive) and torch.equal(attack.mask(size, size, None), naive)


def test_the_piece_follows_the_rank_and_one_attacker_gets_the_global_trigger() -> None:
    x, y = torch.zeros(10, 1, 8, 8), torch.arange(10)
    attack = DBA(**DIGITS, poison_fraction=1.0)  # type: ignore[arg-type]
    for rank in range(6):
        bound = attack.for_client(client_round(x, y, rank=rank, num_malicious=6))
        px, _ = bound.poison(x, y, 10, torch.Generator())
        assert torch.equal(px[0, 0] == 1.0, attack.mask(8, 8, rank % 4))
    alone = attack.for_client(client_round(x, y, rank=0, num_malicious=1))
    assert torch.equal(
        alone.poison(x, y, 10, torch.Generator())[0][0, 0] == 1.0, attack.mask(8, 8, None)
    )
    assert attack.piece is None  # for_client returns a copy
    # the client-side entry point ranks by the sorted malicious pool: 7 is the second of 3, 7, 9
    done = malicious_round(
        x, y, attack, partition_id=7, num_classes=10, malicious=[9, 3, 7], server_round=1
    )
    assert torch.equal(done.x[0, 0] == 1.0, attack.mask(8, 8, 1)) and done.shaping is None


def test_success_sets_global_and_pieces() -> None:
    x, y = torch.zeros(20, 3, 8, 8), torch.arange(20) % 10
    sets = DBA(**DIGITS, target=2).success_sets(x, y)  # type: ignore[arg-type]
    assert list(sets) == ["asr", "asr_piece0", "asr_piece1", "asr_piece2", "asr_piece3"]
    for name, (sx, sy) in sets.items():
        assert sx.shape[0] == 18 and torch.all(sy == 2), name
    assert int((sets["asr"][0] == 1.0).sum()) == 3 * 4 * 3 * 18  # 4 strips × 3 px × 3 channels


def test_dba_errors() -> None:
    with pytest.raises(ValueError, match="does not fit"):
        DBA().success_set(torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.int64))
    with pytest.raises(ValueError, match="piece must be"):
        DBA(piece=4)
    with pytest.raises(ValueError, match="target"):
        DBA(**DIGITS, target=12).poison(  # type: ignore[arg-type]
            torch.zeros(2, 1, 8, 8), torch.zeros(2, dtype=torch.int64), 10, torch.Generator()
        )
