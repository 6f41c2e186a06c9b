"""The threat model: who is malicious, what the adversary knows, when it acts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fedpoison.seeding import MALICIOUS_POOL, numpy_rng

Knowledge = Literal["own", "all"]
KNOWLEDGE_ORDER: dict[str, int] = {"own": 0, "all": 1}


@dataclass(frozen=True)
class ThreatModel:
    """Which clients are malicious, what they know and when they act.

    Attributes:
        num_malicious: size of the malicious pool (ignored when ``fraction`` is set).
        fraction: pool size as a fraction of the population, rounded down.
        selection: ``fixed`` = a pool drawn once from the seed; ``explicit`` = ``ids``.
        ids: explicit malicious client ids (``selection="explicit"``).
        knowledge: ``own`` = the malicious clients' own honest updates only; ``all`` = also
            every benign update of the round.
        knows_defense: whether defense-aware attacks are told the deployed defense
            (pre-aggregators and rule) and its ``f``.
        start_round, end_round: the adversary acts in rounds ``start_round ≤ r ≤ end_round``
            (``end_round=None`` = until the end).

    The pool is fixed for the whole run (history-based defenses need stable identities).
    With partial participation, the malicious clients of a round are the sampled members of
    the pool; their count is recorded per round.
    """

    num_malicious: int = 0
    fraction: float | None = None
    selection: Literal["fixed", "explicit"] = "fixed"
    ids: tuple[int, ...] = ()
    knowledge: Knowledge = "all"
    knows_defense: bool = False
    start_round: int = 1
    end_round: int | None = None

    def pool_size(self, num_clients: int) -> int:
        """How many of ``num_clients`` clients are malicious."""
        if self.selection == "explicit":
            return len(set(self.ids))
        if self.fraction is not None:
            return int(np.floor(self.fraction * num_clients))
        return self.num_malicious

    def malicious_ids(self, num_clients: int, seed: int) -> frozenset[int]:
        """The malicious pool, identical in every round, process and engine for ``seed``."""
        if self.selection == "explicit":
            bad = [i for i in self.ids if not 0 <= i < num_clients]
            if bad:
                raise ValueError(f"threat.ids {bad} are outside [0, {num_clients - 1}]")
            return frozenset(int(i) for i in self.ids)
        k = self.pool_size(num_clients)
        if not 0 <= k <= num_clients:
            raise ValueError(
                "threat.num_malicious must be in "
                f"[0, federation.num_clients={num_clients}], got {k}"
            )
        rng = numpy_rng(seed, MALICIOUS_POOL)
        return frozenset(int(i) for i in rng.choice(num_clients, size=k, replace=False))

    def active(self, server_round: int) -> bool:
        """Whether the adversary acts in ``server_round``."""
        return server_round >= self.start_round and (
            self.end_round is None or server_round <= self.end_round
        )
