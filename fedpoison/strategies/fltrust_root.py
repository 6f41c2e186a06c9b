"""FLTrust's server step (Cao et al. 2021, Alg. 2): train the global model on a root set.

The rule's :class:`~fedpoison.aggregators.base.RootSet` (config node ``defense.root``) says how
many examples the server holds, how biased they are and which procedure it trains them with.
Every round the server runs that procedure on them and hands ``g_0 = w_root − w_global`` to
the rule as ``server_update``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from fedpoison.aggregators.base import RootSet
from fedpoison.data.base import ImageDataset
from fedpoison.seeding import SERVER_TRAINING, numpy_rng, torch_generator
from fedpoison.training.local import LocalTraining, local_train


def server_procedure(clients: LocalTraining, root: RootSet) -> LocalTraining:
    """The server's local procedure on the root set.

    ``clients``: exactly the clients' procedure (paper, Alg. 2: "the same local training").
    ``official``: the official MXNet code (docs/conventions.md §C14 and §C3): every step
    takes the whole root set as one batch and back-propagates the **sum** of its losses. In
    our mean-loss convention that is batch ``root.size`` with lr × ``root.size``/``batch_size``
    (the clients' lr already carries their batch factor), so ``g_0`` is about
    root.size/batch_size (100/32 ≈ 3×) longer than a client step, and so is FLTrust's step.
    """
    if root.procedure == "clients":
        return clients
    return replace(clients, batch_size=root.size, lr=clients.lr * root.size / clients.batch_size)


def draw_root_set(data: ImageDataset, root: RootSet, seed: int, bias_class: int = 0) -> np.ndarray:
    """Indices of the root set into ``data.x_train``; a fraction ``root.bias`` from
    ``bias_class``."""
    size, labels = root.size, data.y_train.numpy()
    if size > len(labels):
        raise ValueError(f"defense.root.size must be in [1, {len(labels)}], got {size}")
    rng = numpy_rng(seed, SERVER_TRAINING)
    if root.bias is None:
        return np.sort(rng.choice(len(labels), size=size, replace=False))
    n_biased = int(round(root.bias * size))
    in_class = np.flatnonzero(labels == bias_class)
    others = np.flatnonzero(labels != bias_class)
    chosen = np.concatenate(
        [
            rng.choice(in_class, n_biased, replace=False),
            rng.choice(others, size - n_biased, replace=False),
        ]
    )
    return np.sort(chosen)


class RootTrainer:
    """Computes the server update ``g_0`` each round on the root set."""

    def __init__(
        self,
        model: nn.Module,
        data: ImageDataset,
        root: RootSet,
        clients: LocalTraining,
        seed: int,
        device: torch.device,
    ) -> None:
        idx = torch.from_numpy(draw_root_set(data, root, seed))
        self.model, self.x, self.y = model, data.x_train[idx], data.y_train[idx]
        self.procedure, self.seed, self.device = server_procedure(clients, root), seed, device

    def server_update(
        self, global_state: dict[str, torch.Tensor], server_round: int
    ) -> torch.Tensor:
        """Flat ``w_root − w_global`` (float32, in state-dict order)."""
        self.model.load_state_dict(global_state)
        before = torch.cat(
            [t.detach().reshape(-1).float().cpu() for t in self.model.state_dict().values()]
        )
        gen = torch_generator(self.seed, SERVER_TRAINING, server_round)
        local_train(self.model, self.x, self.y, self.procedure, gen, self.device)
        after = torch.cat(
            [t.detach().reshape(-1).float().cpu() for t in self.model.state_dict().values()]
        )
        return after - before
