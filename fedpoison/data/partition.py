"""Partitioners: split training-set labels into per-client index arrays.

Every partitioner takes ``(labels, num_clients, rng)`` plus its own keyword parameters and
returns one sorted ``int64`` index array per client. Clients index the shared dataset with
them; nothing is copied. A partitioner marked :func:`reads_columns` also gets the dataset's
kept training columns as ``columns=`` (:func:`assign` passes them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from fedpoison.data.base import ImageDataset
from fedpoison.registry import Registry

Partitioner = Callable[..., list[np.ndarray]]
PARTITIONERS: Registry[Partitioner] = Registry("partitioner")
_COLUMN_READERS: set[Partitioner] = set()


def reads_columns(partitioner: Partitioner) -> Partitioner:
    """Mark ``partitioner`` as taking the dataset's kept columns (``columns=``)."""
    _COLUMN_READERS.add(partitioner)
    return partitioner


def assign(
    partitioner: Callable[..., Any], data: ImageDataset, num_clients: int, rng: np.random.Generator
) -> list[np.ndarray]:
    """Split ``data``'s training set with ``partitioner`` (a registered function or the
    ``functools.partial`` a ``_partial_`` config builds from one)."""
    labels = data.y_train.numpy()
    if getattr(partitioner, "func", partitioner) in _COLUMN_READERS:
        return partitioner(labels, num_clients, rng, columns=data.columns)
    return partitioner(labels, num_clients, rng)


def _check_counts(num_examples: int, num_clients: int, min_size: int) -> None:
    if num_clients < 1:
        raise ValueError(f"federation.num_clients must be ≥ 1, got {num_clients}")
    if num_clients * min_size > num_examples:
        raise ValueError(
            f"cannot give {num_clients} clients {min_size} example(s) each from "
            f"{num_examples} training examples; lower federation.num_clients"
        )


@PARTITIONERS.register("iid")
def iid(labels: np.ndarray, num_clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Uniformly random, near-equal shards (sizes differ by at most one)."""
    _check_counts(len(labels), num_clients, 1)
    order = rng.permutation(len(labels))
    return [np.sort(part).astype(np.int64) for part in np.array_split(order, num_clients)]


@PARTITIONERS.register("dirichlet")
def dirichlet(
    labels: np.ndarray,
    num_clients: int,
    rng: np.random.Generator,
    alpha: float = 0.5,
    min_size: int = 2,
    max_tries: int = 100,
) -> list[np.ndarray]:
    """Label skew (Hsu et al. 2019): per class, proportions over clients ~ Dir(α·1).

    Smaller ``alpha`` ⇒ more skew. The draw is repeated (from the same generator) until every
    client holds at least ``min_size`` examples, as in FedLab/Blades; after ``max_tries``
    failures it raises with the parameters to change.
    """
    if alpha <= 0:
        raise ValueError(f"partition.alpha must be > 0, got {alpha}")
    _check_counts(len(labels), num_clients, min_size)
    classes = np.unique(labels)
    by_class = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    for _ in range(max_tries):
        shards: list[list[np.ndarray]] = [[] for _ in range(num_clients)]
        for idx in by_class:
            proportions = rng.dirichlet(np.full(num_clients, alpha))
            cuts = (np.cumsum(proportions)[:-1] * len(idx)).astype(np.int64)
            for client, part in enumerate(np.split(idx, cuts)):
                shards[client].append(part)
        parts = [np.sort(np.concatenate(s)).astype(np.int64) for s in shards]
        if min(len(p) for p in parts) >= min_size:
            return parts
    raise ValueError(
        f"dirichlet partition: no draw in {max_tries} tries gave every one of {num_clients} "
        f"clients ≥ {min_size} examples with alpha={alpha}; raise partition.alpha, lower "
        "partition.min_size or federation.num_clients"
    )
