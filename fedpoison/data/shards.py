"""Pathological non-IID shards (McMahan et al. 2017, §3 "pathological non-IID partition").

Sort the training examples by label, cut the sorted list into ``num_clients · k`` equal
shards and give every client ``k`` shards at random. With MNIST, 100 clients and ``k = 2``
(the paper's setting: 200 shards of 300) most clients hold examples of only two digits.
"""

from __future__ import annotations

import numpy as np

from fedpoison.data.partition import PARTITIONERS


@PARTITIONERS.register("shards")
def shards(
    labels: np.ndarray,
    num_clients: int,
    rng: np.random.Generator,
    shards_per_client: int = 2,
) -> list[np.ndarray]:
    """``num_clients · shards_per_client`` label-sorted shards, ``shards_per_client`` per client.

    Within a label the order is a random permutation (so which examples of a class share a
    shard is random); shard sizes differ by at most one (``numpy.array_split``). A shard can
    straddle two labels, so a client holds between 1 and ``2 · shards_per_client`` classes.
    """
    if num_clients < 1 or shards_per_client < 1:
        raise ValueError(
            f"shards partition needs num_clients ≥ 1 and shards_per_client ≥ 1, got "
            f"{num_clients} and {shards_per_client}"
        )
    labels = np.asarray(labels)
    num_shards = num_clients * shards_per_client
    if num_shards > len(labels):
        raise ValueError(
            f"shards partition: {num_clients} clients × {shards_per_client} shards = {num_shards} "
            f"shards but only {len(labels)} training examples; lower partition.shards_per_client "
            "or federation.num_clients"
        )
    shuffled = rng.permutation(len(labels))
    by_label = shuffled[np.argsort(labels[shuffled], kind="stable")]
    pieces = np.array_split(by_label, num_shards)
    owners = rng.permutation(num_shards).reshape(num_clients, shards_per_client)
    return [np.sort(np.concatenate([pieces[s] for s in row])).astype(np.int64) for row in owners]
