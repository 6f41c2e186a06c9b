"""Datasets (offline-first) and partitioners."""

from fedpoison.data.base import DATASETS, ImageDataset
from fedpoison.data.partition import PARTITIONERS

__all__ = ["DATASETS", "PARTITIONERS", "ImageDataset"]
