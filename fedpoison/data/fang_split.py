"""The bias split of Fang et al. 2020 and FLTrust (Cao et al. 2021), experimental setups.

Clients are divided into ``C`` groups, one per class (docs/conventions.md §C28; official
code: FLTrust ``assign_data``). A training example with label ``l`` goes to group ``l`` with
probability ``q`` and to each of the other ``C − 1`` groups with probability
``(1 − q)/(C − 1)``; within its group it goes to a client chosen uniformly at random.
``q = 1/C`` is IID; larger ``q`` means more label skew (some write-ups call it p or h).
"""

from __future__ import annotations

import numpy as np

from fedpoison.data.partition import PARTITIONERS, _check_counts


@PARTITIONERS.register("fang")
def fang(
    labels: np.ndarray, num_clients: int, rng: np.random.Generator, q: float = 0.5
) -> list[np.ndarray]:
    """Fang/FLTrust bias split with bias probability ``q`` (``1/C`` = IID).

    Conventions:

    - the ``C`` classes are the distinct values of ``labels`` in increasing order; group
      ``g`` serves the ``g``-th class;
    - groups are as even as possible: the first ``num_clients mod C`` groups get one client
      more (the official code assumes ``C`` divides ``num_clients``);
    - as in ``assign_data``, client ids are then shuffled (its ``random_order``), so group
      membership is not visible in the id and the first ``f`` ids are not one group;
    - fix-up so that every client gets ≥ 1 example: while some client is empty, a uniformly
      random example moves to it from the currently largest client (lowest id on ties);
      this only triggers when clients hold a handful of examples each.

    Requires ``num_clients ≥ C`` (each group needs a client) and ``0 ≤ q ≤ 1``.
    """
    classes, y = np.unique(np.asarray(labels), return_inverse=True)
    c = len(classes)
    if c < 2:
        raise ValueError(f"fang partition needs at least 2 classes, got {c}")
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"partition.q must be in [0, 1], got {q}")
    if num_clients < c:
        raise ValueError(
            f"fang partition makes one client group per class: needs federation.num_clients "
            f"≥ {c} classes, got {num_clients}"
        )
    _check_counts(len(y), num_clients, 1)
    n = len(y)
    home = rng.random(n) < q
    elsewhere = (y + 1 + rng.integers(0, c - 1, size=n)) % c  # uniform over the other groups
    group = np.where(home, y, elsewhere)
    sizes = np.full(c, num_clients // c)
    sizes[: num_clients % c] += 1
    first = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    client = first[group] + rng.integers(0, sizes[group])
    client = rng.permutation(num_clients)[client]
    order = np.argsort(client, kind="stable")
    parts = np.split(order, np.cumsum(np.bincount(client, minlength=num_clients))[:-1])
    parts = _fill_empty(parts, rng)
    return [np.sort(p).astype(np.int64) for p in parts]


def _fill_empty(parts: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Move one random example from the largest client to each empty one, in id order."""
    for k in range(len(parts)):
        if len(parts[k]) == 0:
            donor = int(np.argmax([len(p) for p in parts]))
            pick = int(rng.integers(len(parts[donor])))
            parts[k] = parts[donor][pick : pick + 1]
            parts[donor] = np.delete(parts[donor], pick)
    return parts
