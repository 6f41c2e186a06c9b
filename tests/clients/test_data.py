"""fedpoison.clients.poison_data and PoisonedDataset: data attacks for a user's own ClientApp.

The oracle is fedpoison's own ClientApp: the CLI's partition data for a seed and partition,
and its poisoning rule written out (malicious pool of the threat model, active rounds,
``attack.poison`` seeded ``torch_generator(seed, DATA_ATTACK, partition)``).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from fedpoison_testing import TINY, compose_config
from flwr.app import RecordDict
from torch.utils.data import DataLoader, Dataset, TensorDataset

from fedpoison.attacks import DATA_ATTACKS, Backdoor, LabelFlip, ThreatModel
from fedpoison.clients import PoisonedDataset, poison_data
from fedpoison.clients.app import _ClientRuntime
from fedpoison.run import prepare
from fedpoison.seeding import DATA_ATTACK, torch_generator

SEED, NUM_CLIENTS, NUM_MALICIOUS = 5, 6, 2


@pytest.fixture(scope="module", params=["label_flip", "backdoor"])
def cli(request: pytest.FixtureRequest) -> _ClientRuntime:
    """fedpoison's ClientApp runtime for a digits federation with a data attack from round 2."""
    overrides = [
        *TINY,
        f"attack={request.param}",
        f"threat.num_malicious={NUM_MALICIOUS}",
        "threat.start_round=2",
        f"seed={SEED}",
    ]
    return _ClientRuntime(prepare(compose_config(overrides)).client_spec)


def test_poison_data_equals_the_cli_for_the_same_seed_and_partition(cli: _ClientRuntime) -> None:
    assert cli.spec.data_attack is not None
    attack = DATA_ATTACKS.build(cli.spec.data_attack, "attack.data")
    pool = ThreatModel(num_malicious=NUM_MALICIOUS).malicious_ids(NUM_CLIENTS, SEED)
    for pid in range(NUM_CLIENTS):
        x, y = cli.fed.client_data(pid)
        for server_round in (1, 2, 3):
            got = poison_data(
                x,
                y,
                attack,
                partition_id=pid,
                num_classes=10,
                num_malicious=NUM_MALICIOUS,
                num_partitions=NUM_CLIENTS,
                start_round=2,
                server_round=server_round,
                seed=SEED,
            )
            if pid in pool and server_round >= 2:
                gen = torch_generator(SEED, DATA_ATTACK, pid)
                want = attack.poison(x, y, 10, gen)
                assert not torch.equal(got[0], x) or not torch.equal(got[1], y)
            else:
                want = (x, y)
                assert got[0] is x and got[1] is y  # untouched: the very same tensors
            done = cli.local_data(pid, server_round)
            cli_x, cli_y = done.x, done.y
            for a, b, c in ((got[0], want[0], cli_x), (got[1], want[1], cli_y)):
                assert torch.equal(a, b) and torch.equal(a, c)


def test_poisoned_dataset_serves_what_poison_data_returns(cli: _ClientRuntime) -> None:
    assert cli.spec.data_attack is not None
    attack = DATA_ATTACKS.build(cli.spec.data_attack, "attack.data")
    kw: dict[str, Any] = dict(num_classes=10, num_malicious=2, num_partitions=6, seed=SEED)
    for pid in range(NUM_CLIENTS):
        x, y = cli.fed.client_data(pid)
        partition = TensorDataset(x, y)
        data = PoisonedDataset(partition, attack, partition_id=pid, **kw)
        want = poison_data(x, y, attack, partition_id=pid, **kw)
        assert data.poisoned == (want[1] is not y) and len(data) == len(y)
        got_x, got_y = next(iter(DataLoader(data, batch_size=len(y))))
        assert torch.equal(got_x, want[0]) and torch.equal(got_y, want[1])
        if not data.poisoned:  # served by the wrapped dataset itself
            assert all(torch.equal(a, b) for a, b in zip(data[3], partition[3], strict=True))


class DictItems(Dataset[dict[str, Any]]):
    """Items as Flower Datasets yields them after a transform: ``{"img": ..., "label": int}``."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"img": self.x[i], "label": int(self.y[i])}


def test_mapping_items_keep_their_keys() -> None:
    x, y = torch.rand(8, 1, 8, 8), torch.arange(8) % 4
    backdoor = Backdoor(target=1, poison_fraction=1.0)
    data = PoisonedDataset(
        DictItems(x, y),
        backdoor,
        partition_id=2,
        num_classes=4,
        malicious=[2],
        keys=("img", "label"),
    )
    batch = next(iter(DataLoader(data, batch_size=8)))
    want = poison_data(x, y, backdoor, partition_id=2, num_classes=4, malicious=[2])
    assert set(batch) == {"img", "label"}
    assert torch.equal(batch["img"], want[0]) and batch["label"].tolist() == [1] * 8
    benign = PoisonedDataset(
        DictItems(x, y), backdoor, partition_id=0, num_classes=4, malicious=[2]
    )
    assert not benign.poisoned and benign[5]["label"] == int(y[5])


def test_inputs_are_not_modified_and_the_round_window_needs_a_round() -> None:
    x, y = torch.rand(6, 1, 8, 8), torch.arange(6) % 3
    before = (x.clone(), y.clone())
    poison_data(x, y, Backdoor(), partition_id=0, num_classes=3, malicious=[0])
    assert torch.equal(x, before[0]) and torch.equal(y, before[1])
    with pytest.raises(ValueError, match="server_round"):
        poison_data(x, y, "label_flip", partition_id=0, num_classes=3, malicious=[0], end_round=4)
    out = poison_data(
        x,
        y,
        "label_flip",
        partition_id=0,
        num_classes=3,
        malicious=[0],
        end_round=4,
        server_round=5,
    )
    assert out[1] is y


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (
            lambda d: poison_data(*d, "sign_flip", partition_id=0, num_classes=3, malicious=[0]),
            KeyError,
            "sign_flip",
        ),
        (
            lambda d: poison_data(*d, object(), partition_id=0, num_classes=3, malicious=[0]),
            TypeError,
            "poison_mod",
        ),
        (
            lambda d: poison_data(*d, LabelFlip(), partition_id=0, num_classes=3),
            ValueError,
            "exactly one of",
        ),
        (
            lambda d: PoisonedDataset(
                DictItems(*d), "label_flip", partition_id=0, num_classes=3, malicious=[0]
            ),
            TypeError,
            "keys=",
        ),
        (
            lambda d: PoisonedDataset(
                [(1.0, 0)], "label_flip", partition_id=0, num_classes=3, malicious=[0]
            ),
            TypeError,
            "tensors",
        ),
    ],
)
def test_errors(build: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        build((torch.rand(3, 1, 8, 8), torch.arange(3)))


@pytest.mark.parametrize("server_round", [1, 2], ids=["clean-gathered-at-once", "poisoned"])
def test_batched_data_is_each_clients_local_data_concatenated(
    cli: _ClientRuntime, server_round: int
) -> None:
    # round 1: the attack is not active yet, every row comes from one index_select
    pids = [4, 0, 3, 1]
    want = [cli.local_data(pid, server_round) for pid in pids]
    x, y, sizes = cli._batch_data([(pid, RecordDict()) for pid in pids], server_round)
    assert sizes == [len(d.y) for d in want]
    assert torch.equal(x, torch.cat([d.x for d in want]))
    assert torch.equal(y, torch.cat([d.y for d in want]))
    if server_round == 2:  # a malicious client's rows are poisoned, so the rows differ
        clean = cli.fed.clients_data(pids)
        assert not torch.equal(clean[1], y) or not torch.equal(clean[0], x)
