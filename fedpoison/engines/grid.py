"""A ``flwr.serverapp.Grid`` that runs the ClientApp itself instead of polling a SuperLink.

Node ``partition_id + 1`` hosts client ``partition_id``. Each node keeps one persistent
``Context`` (``node_config`` carries ``partition-id`` and ``num-partitions`` as in Flower's
simulation), created on first use so that large populations cost only what they use.
Subclasses decide *where* the ClientApp calls run (:class:`InlineGrid`, ``RayGrid``).
The contexts' ``ArrayRecord`` state (worker momentum) can be read and restored
(:meth:`SimulationGrid.node_states`), so that a checkpoint holds the clients' state too.
"""

from __future__ import annotations

import itertools
import time
import traceback
from abc import abstractmethod
from collections.abc import Iterable, Sequence

import torch
from flwr.app import ArrayRecord, Context, Error, Message, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid

from fedpoison.engines.flower_internals import ErrorCode, Run, set_server_identity
from fedpoison.protocol import PARTITION_ID
from fedpoison.records import to_record, to_state_dict

Job = tuple[Message, Context]
NodeStates = dict[int, dict[str, dict[str, torch.Tensor]]]
"""``{partition id: {state key: state dict}}``: the ``ArrayRecord``s of the nodes' contexts."""


def error_reply(
    msg: Message, exc: BaseException, code: int = ErrorCode.CLIENT_APP_RAISED_EXCEPTION
) -> Message:
    """An error reply to ``msg`` describing ``exc`` (what Flower's runtime sends)."""
    reason = f"{type(exc).__name__}: {exc}"
    return Message(Error(code=code, reason=reason), reply_to=msg)


def call_client_app(app: ClientApp, msg: Message, context: Context) -> Message:
    """Run ``app`` on one message; an exception becomes an error reply, never a crash."""
    try:
        return app(msg, context)
    except Exception as exc:  # noqa: BLE001 - a failing client is an event, not a crash
        return error_reply(msg, RuntimeError(f"{exc!r}\n{traceback.format_exc(limit=3)}"))


class SimulationGrid(Grid):
    """In-process Grid over ``num_nodes`` simulated nodes."""

    def __init__(self, num_nodes: int, run_id: int = 1) -> None:
        self.num_nodes = num_nodes
        self._run = set_server_identity(run_id)
        self._contexts: dict[int, Context] = {}
        self._pending: dict[str, Message] = {}
        self._ids = itertools.count(1)  # message ids, unique within this grid

    # -- Grid API ---------------------------------------------------------------------
    def set_run(self, run: Run) -> None:
        self._run = run

    @property
    def run(self) -> Run:
        return self._run

    def create_message(
        self,
        content: RecordDict,
        message_type: str,
        dst_node_id: int,
        group_id: str,
        ttl: float | None = None,
    ) -> Message:
        return Message(content, dst_node_id, message_type, ttl=ttl, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return range(1, self.num_nodes + 1)

    def partition_ids(self) -> dict[int, int]:
        """``{node id: partition id}``: known up front, no discovery round needed."""
        return {node: node - 1 for node in self.get_node_ids()}

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        ids = []
        for msg in messages:
            if not 1 <= msg.metadata.dst_node_id <= self.num_nodes:
                raise ValueError(f"message to unknown node {msg.metadata.dst_node_id}")
            msg_id = self._new_id()
            msg.metadata.__dict__["_message_id"] = msg_id
            self._pending[msg_id] = msg
            ids.append(msg_id)
        return ids

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        return self._run_pending(list(message_ids), deadline=None)

    def send_and_receive(
        self, messages: Iterable[Message], *, timeout: float | None = None
    ) -> Iterable[Message]:
        ids = list(self.push_messages(messages))
        return self._run_pending(ids, None if timeout is None else time.monotonic() + timeout)

    # -- execution --------------------------------------------------------------------
    def _new_id(self) -> str:
        return f"{next(self._ids):032x}"

    def _context(self, node_id: int) -> Context:
        if node_id not in self._contexts:
            self._contexts[node_id] = Context(
                run_id=self._run.run_id,
                node_id=node_id,
                node_config={PARTITION_ID: node_id - 1, "num-partitions": self.num_nodes},
                state=RecordDict(),
                run_config={},
            )
        return self._contexts[node_id]

    def node_states(self) -> NodeStates:
        """Every node's ``Context.state`` ``ArrayRecord``s (copies) by partition id; nodes
        without any are left out. Other kinds of records are not read (fedpoison's ClientApp
        keeps none)."""
        states: NodeStates = {}
        for _, context in sorted(self._contexts.items()):
            arrays = {
                key: to_state_dict(record)
                for key, record in context.state.items()
                if isinstance(record, ArrayRecord)
            }
            if arrays:
                states[int(context.node_config[PARTITION_ID])] = arrays
        return states

    def load_node_states(self, states: NodeStates) -> None:
        """Put :meth:`node_states` back into the nodes' contexts (before the first message)."""
        for pid, arrays in states.items():
            if not 0 <= int(pid) < self.num_nodes:
                raise ValueError(f"node state of client {pid}, not one of {self.num_nodes}")
            context = self._context(int(pid) + 1)
            for key, state in arrays.items():
                context.state[key] = to_record(state)

    def _run_pending(self, ids: list[str], deadline: float | None) -> list[Message]:
        msgs = [self._pending.pop(i) for i in ids if i in self._pending]
        jobs = [(m, self._context(m.metadata.dst_node_id)) for m in msgs]
        replies = []
        for reply, context in self.execute(jobs, deadline):
            if reply is None:
                continue  # missed the deadline: like a reply Flower never delivers
            self._contexts[context.node_id] = context
            reply.metadata.__dict__["_message_id"] = self._new_id()
            replies.append(reply)
        return replies

    @abstractmethod
    def execute(
        self, jobs: Sequence[Job], deadline: float | None
    ) -> list[tuple[Message | None, Context]]:
        """Run the ClientApp on each ``(message, context)``; replies in the same order
        (``None`` for a job that missed ``deadline``)."""

    def close(self) -> None:
        """Release workers (nothing to do in-process)."""


class InlineGrid(SimulationGrid):
    """Calls the ClientApp in this process, node by node, in the order given."""

    def __init__(self, client_app: ClientApp, num_nodes: int, run_id: int = 1) -> None:
        super().__init__(num_nodes, run_id)
        self.client_app = client_app

    def execute(
        self, jobs: Sequence[Job], deadline: float | None
    ) -> list[tuple[Message | None, Context]]:
        return [(call_client_app(self.client_app, msg, ctx), ctx) for msg, ctx in jobs]
