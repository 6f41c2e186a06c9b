"""Who takes part in a round, fixed before any message is sent.

:class:`Participation` says how many clients train per round, which are malicious and how the
defense's ``f`` follows; :meth:`Participation.plan` draws a round's :class:`RoundPlan` from
(seed, round) alone, so every engine samples and drops the same clients.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
from flwr.app import ArrayRecord

from fedpoison.strategies.availability import Availability
from fedpoison.strategies.sampling import sample_clients
from fedpoison.training.flat import ModelLayout


@dataclass(frozen=True)
class RoundPlan:
    """One round's sample and the global model it starts from.

    Attributes:
        server_round: 1-based round number.
        sampled: the sampled client ids, ascending.
        missing: ``{client id: reason}`` for sampled clients that will not reply (simulated
            dropouts and stragglers); they are sent nothing.
        arrays: the global model as sent to the clients.
        global_flat: the same model as one float32 vector ``(d,)`` on the CPU.
        layout: names, shapes and dtypes that map ``global_flat`` to ``arrays``.
    """

    server_round: int
    sampled: tuple[int, ...]
    missing: Mapping[int, str]
    arrays: ArrayRecord
    global_flat: torch.Tensor
    layout: ModelLayout

    @property
    def contacted(self) -> list[int]:
        """Sampled clients that are sent the round's model."""
        return [cid for cid in self.sampled if cid not in self.missing]


@dataclass(frozen=True)
class Participation:
    """How many of ``num_clients`` train each round and how ``f`` follows from it.

    Attributes:
        num_clients: registered clients (partitions), ids ``0..num_clients-1``.
        clients_per_round: clients sampled each round.
        malicious: the malicious pool's client ids.
        defense_f: the defense's ``f`` when fixed by the config; ``None`` = from the pool.
        availability: simulated dropouts and stragglers.
    """

    num_clients: int
    clients_per_round: int
    malicious: frozenset[int]
    defense_f: int | None = None
    availability: Availability = field(default_factory=Availability)

    def assumed_f(self, n: int) -> int:
        """The defense's ``f`` for a round with ``n`` usable rows.

        ``defense.f`` when set (to study misspecification); otherwise the malicious pool
        scaled to the round, ``⌈|pool| · n / num_clients⌉`` — the expected number of
        malicious participants, rounded up (equal to ``|pool|`` with full participation).
        """
        if self.defense_f is not None:
            return self.defense_f
        return math.ceil(len(self.malicious) * n / self.num_clients - 1e-9)

    def plan(
        self,
        server_round: int,
        seed: int,
        arrays: ArrayRecord,
        global_flat: torch.Tensor,
        layout: ModelLayout,
    ) -> RoundPlan:
        """The round's sample (of ids ``0..num_clients-1``) and missing clients."""
        sampled = sample_clients(
            range(self.num_clients), self.clients_per_round, seed, server_round
        )
        missing = self.availability.missing(sampled, seed, server_round)
        return RoundPlan(server_round, tuple(sampled), missing, arrays, global_flat, layout)
