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
    """The server's own update ``g_0 = w_root − w_global`` each round (FLTrust, Cao et al.
    2021, Alg. 2): ``procedure`` run on the server's labelled root data from the global model.

    Args:
        model: a model of the federation's architecture (its weights are overwritten).
        x, y: the server's root data, e.g. 100 examples it collected and labelled itself.
        procedure: the local training to run on them (the paper: the clients' own).
        seed: seeds the batch order (``torch_generator(seed, SERVER_TRAINING, round)``).
        device: where the server trains.

    Example:

        >>> import torch
        >>> from fedpoison.strategies.fltrust_root import RootTrainer
        >>> from fedpoison.training.local import LocalTraining
        >>> model = torch.nn.Linear(4, 2)
        >>> x, y = torch.randn(100, 4), torch.randint(0, 2, (100,))
        >>> root = RootTrainer(model, x, y, LocalTraining(lr=0.1, local_steps=2))
        >>> g0 = root.server_update(model.state_dict(), server_round=1)
        >>> g0.shape  # one flat vector over the model's parameters
        torch.Size([10])
    """

    def __init__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        procedure: LocalTraining,
        *,
        seed: int = 0,
        device: str | torch.device = "cpu",
    ) -> None:
        if len(x) != len(y) or len(y) == 0:
            raise ValueError(f"RootTrainer: x, y must have one non-zero length: {len(x)}, {len(y)}")
        self.model, self.x, self.y = model, x, y
        self.procedure, self.seed, self.device = procedure, seed, torch.device(device)

    @classmethod
    def from_dataset(
        cls,
        model: nn.Module,
        data: ImageDataset,
        root: RootSet,
        clients: LocalTraining,
        seed: int,
        device: torch.device,
    ) -> RootTrainer:
        """The CLI's root set: ``root.size`` training examples drawn by :func:`draw_root_set`,
        trained with :func:`server_procedure`."""
        idx = torch.from_numpy(draw_root_set(data, root, seed))
        procedure = server_procedure(clients, root)
        return cls(model, data.x_train[idx], data.y_train[idx], procedure, seed=seed, device=device)

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
