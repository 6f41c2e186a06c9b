"""Which clients train in a round: a seeded draw that depends only on (seed, round)."""

from __future__ import annotations

from collections.abc import Sequence

from fedpoison.seeding import SAMPLING, numpy_rng


def sample_clients(client_ids: Sequence[int], k: int, seed: int, server_round: int) -> list[int]:
    """``k`` distinct ids drawn uniformly without replacement, returned ascending.

    The draw is over the sorted ids, so it does not depend on the order in which a Grid
    lists its nodes; ``k ≥ len(client_ids)`` selects everyone.
    """
    ids = sorted(client_ids)
    if k >= len(ids):
        return ids
    rng = numpy_rng(seed, SAMPLING, server_round)
    return sorted(ids[i] for i in rng.choice(len(ids), size=k, replace=False))
