"""The model, the data and the training loop: what any Flower app of your own already has.

Data: scikit-learn's 8×8 digits (shipped with scikit-learn, no download), split into
``num_partitions`` equal shards by ``partition-id``; the last 297 images are the server's
test set.
"""

from __future__ import annotations

import functools

import torch
from sklearn.datasets import load_digits
from torch import nn

TEST_SIZE = 297


class Net(nn.Module):
    """A small MLP for 8×8 digits."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


def new_model(seed: int = 0) -> Net:
    """The initial global model (fixed by ``seed``)."""
    torch.manual_seed(seed)
    return Net()


@functools.cache
def _digits() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = load_digits(return_X_y=True)
    return torch.tensor(x / 16.0, dtype=torch.float32), torch.tensor(y)


def load_partition(partition_id: int, num_partitions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Client ``partition_id``'s shard of the training images."""
    x, y = _digits()
    n = (len(y) - TEST_SIZE) // num_partitions
    part = slice(partition_id * n, (partition_id + 1) * n)
    return x[part], y[part]


def load_test() -> tuple[torch.Tensor, torch.Tensor]:
    """The server's held-out test images."""
    x, y = _digits()
    return x[-TEST_SIZE:], y[-TEST_SIZE:]


def train(net: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, lr: float) -> float:
    """Full-batch SGD for ``steps`` steps; the last loss."""
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss = 0.0
    for _ in range(steps):
        opt.zero_grad()
        batch_loss = nn.functional.cross_entropy(net(x), y)
        batch_loss.backward()
        opt.step()
        loss = batch_loss.item()
    return loss


def test(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """``(loss, accuracy)`` of ``net`` on ``(x, y)``."""
    with torch.no_grad():
        logits = net(x)
    loss = float(nn.functional.cross_entropy(logits, y))
    return loss, float((logits.argmax(1) == y).float().mean())
