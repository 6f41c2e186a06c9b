"""``engine=vectorized``: in-process, each round's sampled clients trained as one batched call.

Like ``engine=inline`` (same process, same ClientApp, node by node), except that before a
round's ``train`` messages are delivered, the clients they go to are trained together with
:func:`~fedpoison.training.batched.train_clients` (``torch.func.vmap`` over stacked copies of
the parameters). Each client keeps its own data (poisoned before batching), batch order and
generator; the ClientApp then answers each message with its precomputed reply, so its mods
(reply attacks, local DP) and the strategy's validation run exactly as on the other engines.
Results equal ``engine=inline``'s within float32 round-off (the batched sums run in another
order), and are identical run to run.

It cannot run what is not row-independent in training mode (dropout, batch normalisation) nor
a privacy mechanism that replaces local training (DP-SGD): :meth:`VectorizedEngine.check`
refuses those before round 1.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import torch
from flwr.app import Context, Message, RecordDict
from flwr.app.message_type import MessageType
from flwr.clientapp import ClientApp

from fedpoison.clients.app import ClientSpec, make_client_app, train_together, warm_up
from fedpoison.engines.grid import InlineGrid, Job
from fedpoison.engines.inline import InlineEngine
from fedpoison.privacy.base import Privacy
from fedpoison.protocol import PARTITION_ID
from fedpoison.training.batched import batchable


class VectorizedGrid(InlineGrid):
    """An :class:`InlineGrid` that batch-trains each group of ``train`` messages sharing one
    payload (a round's) before delivering them."""

    def __init__(self, client_app: ClientApp, spec: ClientSpec, num_nodes: int) -> None:
        super().__init__(client_app, num_nodes)
        self.spec = spec

    def execute(
        self, jobs: Sequence[Job], deadline: float | None
    ) -> list[tuple[Message | None, Context]]:
        groups: dict[int, tuple[RecordDict, list[int], list[RecordDict]]] = {}
        content: RecordDict | None = None  # the previous train message's, and its group's
        pids: list[int] = []
        states: list[RecordDict] = []
        for msg, context in jobs:
            if msg.metadata.message_type != MessageType.TRAIN:
                continue
            if msg.content is not content:  # (a round's messages share one content, in a row)
                content = msg.content
                _, pids, states = groups.setdefault(id(content), (content, [], []))
            pids.append(int(context.node_config[PARTITION_ID]))
            states.append(context.state)
        for shared, group_pids, group_states in groups.values():
            train_together(self.spec, shared, group_pids, group_states)
        return super().execute(jobs, deadline)


class VectorizedEngine(InlineEngine):
    """In-process, batched local training (``num_threads`` as for ``engine=inline``)."""

    name = "vectorized"

    def check(
        self, model: torch.nn.Module, privacy: Privacy, *, checkpointed_state: bool = False
    ) -> None:
        """Refuse, before round 1, what batched training cannot reproduce exactly (worker
        momentum it runs: the ClientApp applies it to each batched reply). A run that passes
        imports now what torch.func's first call would (``torch._dynamo``, about 1.5–2.5 s
        here): start-up, outside the run's ``wall_s``, like every other import."""
        reason = batchable(model)
        if reason is not None:
            reason = f"the model is not row-independent in training ({reason})"
        elif type(privacy).train is not Privacy.train:
            reason = f"privacy={type(privacy).__name__} trains each client its own way"
        if reason is not None:
            raise ValueError(f"engine=vectorized cannot run this run: {reason}; use engine=inline")
        importlib.import_module("torch._dynamo")

    def grid(self, client_spec: ClientSpec, num_clients: int) -> InlineGrid:
        """A :class:`VectorizedGrid`, after paying torch.func's one-off tracing (before
        round 1; its imports were paid in :meth:`check`)."""
        warm_up(client_spec, batched=True)
        return VectorizedGrid(make_client_app(client_spec), client_spec, num_clients)
