"""FLTrust's server step (Cao et al. 2021, Alg. 2): train the global model on a root set.

The server holds ``root_size`` examples drawn from the training distribution; a fraction
``bias`` of them comes from class ``bias_class`` (the paper's root-set bias p; ``bias=None``
draws uniformly). Every round it runs a local procedure on them and hands
``g_0 = w_root − w_global`` to the rule as ``server_update``; :func:`server_procedure` says
which procedure.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn

from fedpoison.clients.training import LocalTraining, local_train
from fedpoison.data.base import ImageDataset
from fedpoison.seeding import SERVER_TRAINING, numpy_rng, torch_generator

ROOT_PROCEDURES = ("clients", "official")


def server_procedure(
    clients: LocalTraining, root_size: int, mode: str = "clients"
) -> LocalTraining:
    """The server's local procedure on the root set.

    ``clients``: exactly the clients' procedure (paper, Alg. 2: "the same local training").
    ``official``: the official MXNet code (REFERENCES.md D7 and Conventions 1): every step
    takes the whole root set as one batch and back-propagates the **sum** of its losses. In
    our mean-loss convention that is batch ``root_size`` with lr × ``root_size``/``batch_size``
    (the clients' lr already carries their batch factor), so ``g_0`` is about
    root_size/batch_size (100/32 ≈ 3×) longer than a client step, and so is FLTrust's step.
    """
    if mode not in ROOT_PROCEDURES:
        raise ValueError(
            f"defense.root_procedure must be one of {', '.join(ROOT_PROCEDURES)}, got {mode!r}"
        )
    if mode == "clients":
        return clients
    return replace(clients, batch_size=root_size, lr=clients.lr * root_size / clients.batch_size)


def draw_root_set(
    data: ImageDataset, size: int, seed: int, bias: float | None = None, bias_class: int = 0
) -> np.ndarray:
    """Indices of the root set into ``data.x_train``."""
    if not 1 <= size <= len(data.y_train):
        raise ValueError(f"defense.root_size must be in [1, {len(data.y_train)}], got {size}")
    rng = numpy_rng(seed, SERVER_TRAINING)
    labels = data.y_train.numpy()
    if bias is None:
        return np.sort(rng.choice(len(labels), size=size, replace=False))
    if not 0.0 <= bias <= 1.0:
        raise ValueError(f"defense.root_bias must be in [0, 1], got {bias}")
    n_biased = int(round(bias * size))
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
    """Computes the server update ``g_0`` each round with the clients' local procedure."""

    def __init__(
        self,
        model: nn.Module,
        data: ImageDataset,
        indices: np.ndarray,
        procedure: LocalTraining,
        seed: int,
        device: torch.device,
    ) -> None:
        idx = torch.from_numpy(indices)
        self.model, self.x, self.y = model, data.x_train[idx], data.y_train[idx]
        self.procedure, self.seed, self.device = procedure, seed, device

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
