"""train_clients (torch.func, one batched call) against local_train (the sequential loop):
the same batches, loss and SGD step, equal within float32 round-off."""

from __future__ import annotations

import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from fedpoison.models.simple import cnn, logreg, mlp
from fedpoison.seeding import TRAINING, torch_generator
from fedpoison.training.batched import batchable, train_clients, train_stacked
from fedpoison.training.local import LocalTraining, local_train

CPU = torch.device("cpu")


def _flat(state: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in state.values()])


def _compare(model: nn.Module, data, cfg: LocalTraining, atol: float = 1e-6) -> None:
    before = _flat(model.state_dict()).clone()
    generators = [torch_generator(0, TRAINING, 1, j) for j in range(len(data))]
    states, losses = train_clients(model, data, cfg, generators, CPU)
    assert torch.equal(_flat(model.state_dict()), before)  # the global model is not modified
    for j, (x, y) in enumerate(data):
        alone = copy.deepcopy(model)
        loss = local_train(alone, x, y, cfg, torch_generator(0, TRAINING, 1, j), CPU)
        delta_seq = _flat(alone.state_dict()) - before
        delta_bat = _flat(states[j]) - before
        assert torch.allclose(delta_bat, delta_seq, rtol=1e-5, atol=atol), j
        assert losses[j] == pytest.approx(loss, rel=1e-5, abs=1e-6)


def _data(shape: tuple[int, ...], sizes: list[int], seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    return [
        (torch.randn(n, *shape, generator=gen), torch.randint(0, 10, (n,), generator=gen))
        for n in sizes
    ]


@pytest.mark.parametrize(
    ("make", "shape", "atol"),
    # the CNN's max-pools and ReLUs can amplify a 1e-8 difference in one step to ~2e-5 a few
    # steps later (float64: equal to 6e-17), hence its looser float32 bound
    [(logreg, (1, 8, 8), 1e-6), (mlp, (1, 8, 8), 1e-6), (cnn, (1, 28, 28), 5e-5)],
    ids=["logreg", "mlp", "cnn"],
)
@pytest.mark.parametrize(
    "cfg",
    [
        LocalTraining(lr=0.1, local_steps=1, batch_size=32),
        LocalTraining(lr=0.05, momentum=0.9, weight_decay=1e-3, local_steps=4, batch_size=16),
        LocalTraining(lr=0.1, local_epochs=2, batch_size=16),
    ],
    ids=["one-step", "momentum-wd", "epochs"],
)
def test_equals_the_sequential_loop(make, shape, atol: float, cfg: LocalTraining) -> None:
    torch.manual_seed(0)
    # unequal partitions: short last batches and (with epochs) different step counts
    _compare(make(shape, 10), _data(shape, [40, 23, 9, 33]), cfg, atol)


def test_float64_equals_the_sequential_loop_to_round_off() -> None:
    torch.manual_seed(0)
    model = cnn((1, 28, 28), 10).double()
    data = [(x.double(), y) for x, y in _data((1, 28, 28), [40, 23, 9, 33])]
    cfg = LocalTraining(lr=0.05, momentum=0.9, weight_decay=1e-3, local_steps=4, batch_size=16)
    _compare(model, data, cfg, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    batch=st.integers(1, 12),
    steps=st.one_of(st.none(), st.integers(1, 5)),
    momentum=st.sampled_from([0.0, 0.5]),
)
def test_any_partition_sizes_and_procedure(sizes, batch, steps, momentum) -> None:
    torch.manual_seed(1)
    cfg = LocalTraining(lr=0.1, momentum=momentum, batch_size=batch, local_steps=steps)
    _compare(mlp((1, 4, 4), 10, hidden=8), _data((1, 4, 4), sizes, seed=2), cfg)


def test_identical_run_to_run() -> None:
    torch.manual_seed(0)
    model, data = mlp((1, 8, 8), 10), _data((1, 8, 8), [30, 30, 17])
    cfg = LocalTraining(lr=0.1, local_steps=3, batch_size=8)

    def run():
        gens = [torch_generator(3, TRAINING, 2, j) for j in range(3)]
        return train_clients(model, data, cfg, gens, CPU)

    (a, la), (b, lb) = run(), run()
    assert all(torch.equal(_flat(x), _flat(y)) for x, y in zip(a, b, strict=True)) and la == lb


def test_refuses_row_dependent_layers_and_empty_clients() -> None:
    assert batchable(mlp((1, 8, 8), 10)) is None
    with_dropout = nn.Sequential(nn.Flatten(), nn.Dropout(0.5), nn.Linear(64, 10))
    assert "Dropout" in batchable(with_dropout)
    assert "BatchNorm1d" in batchable(nn.Sequential(nn.Flatten(), nn.BatchNorm1d(64)))
    cfg = LocalTraining(local_steps=1)
    with pytest.raises(ValueError, match="not row-independent"):
        train_clients(with_dropout, _data((1, 8, 8), [4]), cfg, [torch.Generator()], CPU)
    empty = [(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long))]
    with pytest.raises(ValueError, match="holds no examples"):
        train_clients(mlp((1, 8, 8), 10), empty, cfg, [torch.Generator()], CPU)


def test_train_stacked_refuses_rows_that_do_not_add_up_to_the_sizes() -> None:
    (x, y), cfg = _data((1, 8, 8), [6])[0], LocalTraining(local_steps=1)
    with pytest.raises(ValueError, match="6 inputs, 6 labels, sizes 5"):
        train_stacked(logreg((1, 8, 8), 10), x, y, [2, 3], cfg, [torch.Generator()] * 2, CPU)
    with pytest.raises(ValueError, match="6 inputs, 5 labels, sizes 6"):
        train_stacked(logreg((1, 8, 8), 10), x, y[:5], [6], cfg, [torch.Generator()], CPU)
