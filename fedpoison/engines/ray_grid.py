"""A :class:`SimulationGrid` that dispatches ClientApp calls to a pool of Ray actors.

Each actor builds the ClientApp from the (small) ``ClientSpec`` once and loads the data
itself. The global model of a round goes to the object store once (``ray.put``) and every
message refers to it; contexts travel with their messages so any actor can serve any node.
A call past ``client_timeout`` or an actor that dies becomes an error reply and the actor is
replaced; the round continues.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import Any

import ray
from flwr.app import ArrayRecord, Context, Message, RecordDict

from fedpoison.clients.app import ClientSpec, make_client_app, warm_up
from fedpoison.engines.flower_internals import ErrorCode
from fedpoison.engines.grid import Job, SimulationGrid, call_client_app, error_reply


class ClientWorker:
    """Ray actor body: one ClientApp per process."""

    def __init__(self, spec: ClientSpec, num_threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, num_threads))
        self.app = make_client_app(spec)
        warm_up(spec)

    def ready(self) -> bool:
        """Returns once the constructor (data and model loading) has finished."""
        return True

    def run(
        self, msg: Message, context: Context, arrays: ArrayRecord | None
    ) -> tuple[Message, Context]:
        if arrays is not None:
            msg.content = RecordDict({**msg.content, "arrays": arrays})
        return call_client_app(self.app, msg, context), context


def _without_arrays(msg: Message) -> Message:
    """A copy of ``msg`` whose content lacks the (shared) ``arrays`` record."""
    lite = Message(
        RecordDict({k: v for k, v in msg.content.items() if k != "arrays"}),
        msg.metadata.dst_node_id,
        msg.metadata.message_type,
        ttl=msg.metadata.ttl,
        group_id=msg.metadata.group_id,
    )
    lite.metadata.__dict__["_message_id"] = msg.metadata.message_id
    return lite


class RayGrid(SimulationGrid):
    """Runs jobs on ``num_workers`` actors, keeping each busy with one call at a time."""

    def __init__(
        self,
        spec: ClientSpec,
        num_nodes: int,
        num_workers: int,
        num_cpus_per_worker: float,
        num_gpus_per_worker: float,
        client_timeout: float | None = None,
    ) -> None:
        super().__init__(num_nodes)
        self._actor_cls = ray.remote(num_cpus=num_cpus_per_worker, num_gpus=num_gpus_per_worker)(
            ClientWorker
        )
        self._spec = spec
        self._threads = max(1, int(num_cpus_per_worker))
        self.client_timeout = client_timeout
        self.actors = [self._spawn() for _ in range(num_workers)]
        ray.get(
            [actor.ready.remote() for actor in self.actors]
        )  # start-up never counts as client time
        self.replaced = 0

    def _spawn(self) -> Any:
        """A new actor (not yet ready).

        Any: ray types ``ActorClass.remote()`` as ``ActorHandle[T] | type[T]``, and neither
        side's methods have ``.remote`` (ray types it only for ``@ray.method`` methods).
        """
        return self._actor_cls.remote(self._spec, self._threads)

    def _replace(self, actor: Any) -> Any:
        ray.kill(actor, no_restart=True)
        self.replaced += 1
        fresh = self._spawn()
        ray.get(fresh.ready.remote())
        self.actors[self.actors.index(actor)] = fresh
        return fresh

    def execute(
        self, jobs: Sequence[Job], deadline: float | None
    ) -> list[tuple[Message | None, Context]]:
        shared: dict[int, Any] = {}
        calls = []
        for msg, ctx in jobs:
            arrays = msg.content.get("arrays") if msg.has_content() else None
            ref = None
            if isinstance(arrays, ArrayRecord):
                ref = shared.setdefault(id(arrays), ray.put(arrays))
            calls.append((_without_arrays(msg) if ref is not None else msg, ctx, ref))
        results: list[tuple[Message | None, Context]] = [(None, ctx) for _, ctx in jobs]
        queue = deque(range(len(jobs)))
        idle = deque(self.actors)
        running: dict[Any, tuple[int, Any, float]] = {}
        while queue or running:
            while queue and idle:
                i, actor = queue.popleft(), idle.popleft()
                msg, ctx, ref = calls[i]
                running[actor.run.remote(msg, ctx, ref)] = (i, actor, time.monotonic())
            budget = self._wait_budget(running, deadline)
            done, _ = ray.wait(list(running), num_returns=1, timeout=budget)
            now = time.monotonic()
            for ref in done:
                i, actor, _ = running.pop(ref)
                try:
                    results[i] = ray.get(ref)
                    idle.append(actor)
                except ray.exceptions.RayActorError as exc:
                    results[i] = (
                        error_reply(jobs[i][0], exc, ErrorCode.CLIENT_APP_CRASHED),
                        jobs[i][1],
                    )
                    idle.append(self._replace(actor))
            for ref, (i, actor, started) in list(running.items()):
                if self.client_timeout is not None and now - started > self.client_timeout:
                    del running[ref]
                    results[i] = (
                        error_reply(
                            jobs[i][0], TimeoutError(f"client exceeded {self.client_timeout} s")
                        ),
                        jobs[i][1],
                    )
                    idle.append(self._replace(actor))
            if deadline is not None and now >= deadline:
                for _, actor, _ in running.values():
                    self._replace(actor)  # late replies are dropped, as Flower drops them
                break
        return results

    def _wait_budget(
        self, running: dict[Any, tuple[int, Any, float]], deadline: float | None
    ) -> float | None:
        """Seconds until the next client timeout or the round deadline (None = no limit)."""
        limits = []
        now = time.monotonic()
        if self.client_timeout is not None:
            limits += [started + self.client_timeout - now for _, _, started in running.values()]
        if deadline is not None:
            limits.append(deadline - now)
        return max(0.0, min(limits)) if limits else None

    def close(self) -> None:
        for actor in self.actors:
            ray.kill(actor, no_restart=True)
        self.actors = []
