"""Datasets (offline-first) and partitioners.

Importing this package registers every dataset loader in ``DATASETS`` and every partitioner
in ``PARTITIONERS``.
"""

from fedpoison.data import (  # noqa: F401  (registration)
    cifar10,
    digits,
    fang_split,
    flwr_partition,
    hf,
    mnist,
    shards,
)
from fedpoison.data.base import DATASETS, ImageDataset
from fedpoison.data.partition import PARTITIONERS

__all__ = ["DATASETS", "PARTITIONERS", "ImageDataset"]
