"""FLTrust's server step: the root-set procedure (clients' or the official code's)."""

from __future__ import annotations

import pytest

from fedpoison.aggregators.base import RootSet
from fedpoison.strategies.fltrust_root import server_procedure
from fedpoison.training.local import LocalTraining

CLIENTS = LocalTraining(
    lr=0.0096, momentum=0.0, weight_decay=0.0, batch_size=32, local_epochs=1, local_steps=1
)


def test_clients_mode_is_the_clients_procedure() -> None:
    assert server_procedure(CLIENTS, RootSet(100, procedure="clients")) == CLIENTS


def test_official_mode_is_one_whole_root_batch_with_sum_loss_scaling() -> None:
    """MXNet sum loss over |D_0| = 100 at lr_paper 3e-4 ⇔ mean loss at 3e-4 × 100."""
    official = server_procedure(CLIENTS, RootSet(100, procedure="official"))
    assert official.batch_size == 100
    assert official.lr == pytest.approx(3e-4 * 100)
    assert official.local_steps == CLIENTS.local_steps and official.momentum == CLIENTS.momentum


def test_unknown_mode_names_the_choices() -> None:
    with pytest.raises(ValueError, match="root.procedure must be one of clients, official"):
        RootSet(100, procedure="sum")


@pytest.mark.parametrize(
    ("size", "bias", "key"),
    [(0, None, "root.size"), (True, None, "root.size"), (10, 1.5, "root.bias")],
)
def test_an_impossible_root_set_names_its_key(size: int, bias: float | None, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        RootSet(size, bias)
