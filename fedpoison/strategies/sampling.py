"""Which clients train in a round: a seeded draw that depends only on (seed, round), of a
size :class:`NodeSampling` sets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fedpoison.seeding import SAMPLING, numpy_rng


def sample_clients(
    client_ids: Sequence[int], k: int, seed: int, server_round: int, purpose: int = SAMPLING
) -> list[int]:
    """``k`` distinct ids drawn uniformly without replacement, returned ascending.

    The draw is over the sorted ids, so it does not depend on the order in which a Grid
    lists its nodes; ``k ≥ len(client_ids)`` selects everyone. ``purpose`` names the random
    stream (:data:`~fedpoison.seeding.SAMPLING` for training, ``EVALUATION`` for evaluation).
    """
    ids = sorted(client_ids)
    if k >= len(ids):
        return ids
    rng = numpy_rng(seed, purpose, server_round)
    return sorted(ids[i] for i in rng.choice(len(ids), size=k, replace=False))


@dataclass(frozen=True)
class NodeSampling:
    """How many of the ``N`` clients train and evaluate each round, in Flower's ``FedAvg``
    terms: ``max(int(N·fraction), min_nodes)`` (at most ``N``); ``num_train_nodes`` fixes the
    training count instead; ``fraction_evaluate=0`` turns federated evaluation off."""

    fraction_train: float = 1.0
    fraction_evaluate: float = 1.0
    min_train_nodes: int = 2
    min_evaluate_nodes: int = 2
    min_available_nodes: int = 2
    num_train_nodes: int | None = None

    def __post_init__(self) -> None:
        for name in ("fraction_train", "fraction_evaluate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.num_train_nodes is not None and self.num_train_nodes < 1:
            raise ValueError(f"num_train_nodes must be ≥ 1, got {self.num_train_nodes}")

    def train_count(self, n: int) -> int:
        """Clients sampled for training each round among ``n``."""
        count = self.num_train_nodes
        if count is None:
            count = max(int(n * self.fraction_train), self.min_train_nodes)
        if count > n:
            raise ValueError(f"{count} clients per round, but only {n} nodes")
        return count

    def evaluate_count(self, n: int) -> int:
        """Clients asked to evaluate each round among ``n`` (0: no federated evaluation)."""
        if self.fraction_evaluate == 0.0:
            return 0
        return min(n, max(int(n * self.fraction_evaluate), self.min_evaluate_nodes))
