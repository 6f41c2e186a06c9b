"""Any flwr-datasets partitioner by name (``partition=flwr``; ``pip install 'fedpoison[hf]'``).

``partition.partitioner`` names one of :data:`PARTITIONER_CLASSES` (flwr-datasets' classes);
the other non-null fields of the config are its parameters (``alpha``, ``partition_by``,
``num_shards_per_partition``, ...), ``num_partitions`` is ``federation.num_clients``, and
``partition_by`` (default ``label``) is passed to those that split by a column, and
``natural_id`` splits by ``id_column`` (a column the dataset kept, ``dataset.keep_columns``).
As ``flwr_datasets.FederatedDataset`` does by default, the training split is shuffled first
(flwr-datasets' ``IidPartitioner`` takes contiguous shards); both that shuffle and the
partitioner's own ``seed`` derive from fedpoison's partition generator, so the same run seed
gives the same split. Each client's indices are the rows flwr-datasets assigns it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from fedpoison.data.partition import PARTITIONERS, reads_columns
from fedpoison.extras import require

PARTITIONER_CLASSES = {
    "iid": "IidPartitioner",
    "dirichlet": "DirichletPartitioner",
    "shard": "ShardPartitioner",
    "pathological": "PathologicalPartitioner",
    "natural_id": "NaturalIdPartitioner",
    "linear": "LinearPartitioner",
    "square": "SquarePartitioner",
    "exponential": "ExponentialPartitioner",
    "continuous": "ContinuousPartitioner",
}
"""``partition.partitioner`` → class in ``flwr_datasets.partitioner``."""
BY_COLUMN = frozenset({"dirichlet", "shard", "pathological", "continuous"})
"""Partitioners that split by ``partition_by`` and take a ``seed`` (the others split the
shuffled order by size alone)."""
WITHOUT_NUM_PARTITIONS = frozenset({"natural_id"})
"""Partitioners whose number of partitions is the data's (one per id)."""
_INDEX = "__fedpoison_index__"


def _build(partitioner: str, num_clients: int, seed: int, params: dict[str, Any]) -> Any:
    """The flwr-datasets partitioner, ``ValueError`` naming what is wrong with the config."""
    module = require("flwr_datasets.partitioner", "hf", "partition=flwr")
    if partitioner not in PARTITIONER_CLASSES:
        raise ValueError(
            f"partition.partitioner={partitioner}: not a flwr-datasets partitioner fedpoison "
            f"knows; choose from {', '.join(PARTITIONER_CLASSES)}"
        )
    kwargs = dict(params)
    if partitioner not in WITHOUT_NUM_PARTITIONS:
        kwargs["num_partitions"] = num_clients
    if partitioner in BY_COLUMN:
        kwargs["seed"] = seed
    elif partitioner not in WITHOUT_NUM_PARTITIONS:
        kwargs.pop("partition_by", None)
    cls = getattr(module, PARTITIONER_CLASSES[partitioner])
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ValueError(
            f"partition.partitioner={partitioner} ({cls.__name__}): {exc}; "
            "set the fields it takes, null the others"
        ) from None


@PARTITIONERS.register("flwr")
@reads_columns
def flwr(
    labels: np.ndarray,
    num_clients: int,
    rng: np.random.Generator,
    partitioner: str = "iid",
    name: str | None = None,
    id_column: str | None = None,
    columns: Mapping[str, np.ndarray] | None = None,
    **params: Any,
) -> list[np.ndarray]:
    """Client index arrays from flwr-datasets' ``partitioner`` with ``params`` (nulls dropped);
    ``columns`` are the dataset's kept training columns (``label`` is always there)."""
    hf = require("datasets", "hf", "partition=flwr")
    table = {"label": labels, **(columns or {})}
    if partitioner == "natural_id":
        if id_column is None or id_column not in table:
            raise ValueError(
                "partition.partitioner=natural_id needs partition.id_column naming a column the "
                f"dataset kept (dataset.keep_columns); it has {', '.join(table)}"
            )
        params = {**params, "partition_by": id_column}
    table[_INDEX] = np.arange(len(labels))
    shuffle_seed, seed = (int(s) for s in rng.integers(0, 2**31 - 1, size=2))
    chosen = {k: v for k, v in params.items() if v is not None}
    split = _build(partitioner, num_clients, seed, chosen)
    split.dataset = hf.Dataset.from_dict(table).shuffle(seed=shuffle_seed)
    if split.num_partitions != num_clients:
        raise ValueError(
            f"partition.partitioner={partitioner} makes {split.num_partitions} partitions; set "
            f"federation.num_clients={split.num_partitions}"
        )
    try:
        parts = [np.asarray(split.load_partition(k)[_INDEX]) for k in range(num_clients)]
    except (ValueError, KeyError) as exc:
        raise ValueError(f"partition.partitioner={partitioner} ({name or 'flwr'}): {exc}") from None
    if min(len(p) for p in parts) == 0:
        raise ValueError(
            f"partition.partitioner={partitioner} leaves a client without examples; "
            "lower federation.num_clients or change the partitioner's parameters"
        )
    return [np.sort(p).astype(np.int64) for p in parts]
