"""How a data attack also shapes the malicious client's own training and update.

Some backdoors are more than poisoned data: Neurotoxin masks every gradient (REFERENCES D32),
PGD projects the weights back into a norm ball during training and may boost the result
(D33), DBA gives each attacker its own piece of the trigger (D30), A3FL optimises its trigger
against the received global model (D35). They need what only the malicious client has in
the round it attacks in: the received global model, its clean partition, its rank in the
malicious pool. Two optional hooks of :class:`~fedpoison.attacks.base.DataAttack` carry them,
both called by the malicious client (fedpoison's ClientApp, or a user's through
:func:`fedpoison.clients.malicious_round`) with a :class:`ClientRound`:

1. ``attack.for_client(client)`` → the data attack this client poisons with in this round
   (default: the attack itself; DBA: its local piece; A3FL: the optimised trigger; when the
   result depends on the received model, ``attack.success_depends_on_model()`` is true and
   the server re-derives the round's success sets the same way, from the model the
   attackers received and the leader's data);
2. ``bound.shaping(client)`` → a :class:`Shaping` applied by the local training loop, or
   ``None`` (default: plain local SGD on the poisoned data, the original ``backdoor``).

A :class:`Shaping` acts in place on the model's trainable parameters, in
``model.parameters()`` order, at three points of local training (fedpoison's
:func:`~fedpoison.training.local.local_train` calls them; a user's own loop calls them at
the same points)::

    for batch in batches:
        loss.backward();  shaping.after_backward(params)     # e.g. grad ← grad ⊙ M
        optimizer.step(); shaping.after_step(params, last)   # e.g. project ‖w − w_g‖ ≤ ε
    shaping.finish(params)                                  # e.g. w ← w_g + γ·(w − w_g)

so update shaping stays on the client and the server sees an ordinary reply: the malicious
training needs no collusion. A malicious client that shapes its training trains with plain
local SGD (``training.*``), whatever the ``privacy`` mechanism's DP-SGD: it does not follow the
protocol; client-side DP mods (local DP) still apply to its reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from fedpoison.data.base import ImageDataset


@dataclass(frozen=True)
class ClientRound:
    """What a malicious client knows in a round it attacks in.

    Attributes:
        model: the client's model, holding the received global weights, or ``None`` where
            the caller has none (then only attacks that need no model work). A hook may run
            it (forward/backward) but must leave its weights and ``.grad`` fields as found.
        x, y: the client's clean partition, ``(N, C, H, W)`` float32 and ``(N,)`` int64; not
            to be modified.
        num_classes: the dataset's number of classes.
        rank: the client's position in the malicious pool sorted by partition id (0-based).
        num_malicious: the size of the malicious pool.
        server_round: the 1-based round.
        generator: the attack's own randomness this round, seeded from (seed, round, client).
        previous_global: the trainable parameters of the global model this node received
            the last time before this round (``model.parameters()`` order), or ``None`` in
            its first round (Neurotoxin's ``global_diff`` estimate).
        dataset: the federation's dataset (an attacker's offline data, e.g. the edge-case
            set), or ``None`` where the caller has none to give.
        leader: the clean partition of the pool's first attacker (rank 0), for attacks whose
            colluding attackers share one computation (A3FL's trigger search), or ``None``
            (then the attack uses the client's own partition).
    """

    model: nn.Module | None
    x: torch.Tensor
    y: torch.Tensor
    num_classes: int
    rank: int
    num_malicious: int
    server_round: int
    generator: torch.Generator
    previous_global: tuple[torch.Tensor, ...] | None = None
    dataset: ImageDataset | None = None
    leader: tuple[torch.Tensor, torch.Tensor] | None = None

    def parameters(self) -> list[nn.Parameter]:
        """The model's trainable parameters, in the order every hook sees them."""
        if self.model is None:
            raise ValueError(
                "this attack shapes local training: pass the model (holding the received "
                "global weights) to fedpoison.clients.malicious_round"
            )
        return [p for p in self.model.parameters() if p.requires_grad]


class Shaping:
    """The identity shaping: local SGD on the poisoned data, nothing else. Subclasses override
    the hooks they need; every hook works in place on ``params`` (the trainable parameters,
    ``model.parameters()`` order) under ``torch.no_grad()``."""

    def after_backward(self, params: Sequence[nn.Parameter]) -> None:
        """After each backward pass, before the optimizer step (``p.grad`` is set)."""

    def after_step(self, params: Sequence[nn.Parameter], last: bool) -> None:
        """After each optimizer step; ``last`` is true after the round's last step."""

    def finish(self, params: Sequence[nn.Parameter]) -> None:
        """Once after local training: the weights left in ``params`` are the reply."""


def flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The tensors concatenated into one float vector (a copy)."""
    return torch.cat([t.detach().reshape(-1) for t in tensors])


@torch.no_grad()
def assign(params: Sequence[torch.Tensor], vector: torch.Tensor) -> None:
    """Copy the flat ``vector`` into ``params`` (in place, their order and shapes)."""
    start = 0
    for p in params:
        p.copy_(vector[start : start + p.numel()].view_as(p))
        start += p.numel()
