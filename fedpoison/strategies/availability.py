"""Simulated dropouts and stragglers (a simulated clock, as in FedScale-style simulators).

Each sampled client independently drops out with probability ``dropout_rate``; otherwise it is
a straggler with probability ``straggler_fraction``, taking ``straggler_slowdown`` times a
normal client's round time (1.0). With a ``deadline`` (in those units), stragglers slower than
it miss the round. Draws come from (seed, round) only, so every engine drops the same clients,
and nothing real is slept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedpoison.seeding import FAULTS, numpy_rng


@dataclass(frozen=True)
class Availability:
    """Which sampled clients do not reply in time."""

    dropout_rate: float = 0.0
    straggler_fraction: float = 0.0
    straggler_slowdown: float = 1.0
    deadline: float | None = None

    def missing(self, sampled: Sequence[int], seed: int, server_round: int) -> dict[int, str]:
        """``{client id: reason}`` for the ``sampled`` (ascending) clients that will not reply."""
        late = self.deadline is not None and self.straggler_slowdown > self.deadline
        if self.dropout_rate == 0.0 and not (late and self.straggler_fraction > 0.0):
            return {}
        draws = numpy_rng(seed, FAULTS, server_round).random((len(sampled), 2))
        out: dict[int, str] = {}
        for cid, (drop, slow) in zip(sampled, draws.tolist(), strict=True):
            if drop < self.dropout_rate:
                out[cid] = "dropped out (simulated)"
            elif late and slow < self.straggler_fraction:
                out[cid] = (
                    "straggler missed the deadline "
                    f"({self.straggler_slowdown:g}x > {self.deadline:g})"
                )
        return out
