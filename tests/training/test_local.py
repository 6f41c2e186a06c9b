"""Local training: the hand-written SGD equals torch.optim.SGD; batching; evaluation."""

import pytest
import torch

from fedpoison.training.local import LocalTraining, batches, evaluate, local_train


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3)
    )


@pytest.mark.parametrize("momentum,weight_decay", [(0.0, 0.0), (0.9, 0.0), (0.5, 1e-2)])
def test_sgd_matches_torch_optim(momentum, weight_decay):
    x, y = torch.randn(50, 1, 4, 4), torch.randint(0, 3, (50,))
    cfg = LocalTraining(
        lr=0.1, momentum=momentum, weight_decay=weight_decay, batch_size=8, local_epochs=2
    )
    ours = _model()
    local_train(ours, x, y, cfg, torch.Generator().manual_seed(1), torch.device("cpu"))
    ref = _model()
    opt = torch.optim.SGD(ref.parameters(), lr=0.1, momentum=momentum, weight_decay=weight_decay)
    for idx in batches(50, cfg, torch.Generator().manual_seed(1)):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(ref(x[idx]), y[idx]).backward()
        opt.step()
    for a, b in zip(ours.parameters(), ref.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)


def test_batches_epochs_and_steps():
    g = torch.Generator().manual_seed(0)
    epochs = batches(10, LocalTraining(batch_size=4, local_epochs=2), g)
    assert [len(b) for b in epochs] == [4, 4, 2, 4, 4, 2]
    assert sorted(torch.cat(epochs[:3]).tolist()) == list(range(10))
    steps = batches(10, LocalTraining(batch_size=4, local_steps=5), g)
    assert len(steps) == 5


def test_evaluate_and_empty_client():
    model = _model()
    x, y = torch.randn(20, 1, 4, 4), torch.randint(0, 3, (20,))
    loss, acc = evaluate(model, x, y, torch.device("cpu"))
    assert loss > 0 and 0 <= acc <= 1
    with pytest.raises(ValueError, match="no examples"):
        local_train(model, x[:0], y[:0], LocalTraining(), torch.Generator(), torch.device("cpu"))
