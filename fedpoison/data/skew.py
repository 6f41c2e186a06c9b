"""Label-skew statistics of a partition: per-client label histograms and their distance to
the global label distribution (used by ``fedpoison-partitions`` and the partitioner tests)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def label_counts(labels: np.ndarray, parts: Sequence[np.ndarray], num_classes: int) -> np.ndarray:
    """``(num_clients, num_classes)`` matrix: row ``k`` counts the labels client ``k`` holds."""
    labels = np.asarray(labels)
    return np.stack([np.bincount(labels[p], minlength=num_classes) for p in parts])


def total_variation(counts: np.ndarray) -> np.ndarray:
    """Per client, ``½ Σ_c |p_k(c) − p(c)|``: its label distribution vs. the pooled one
    (0 = IID)."""
    counts = np.asarray(counts, dtype=np.float64)
    pooled = counts.sum(axis=0) / counts.sum()
    per_client = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)
    return 0.5 * np.abs(per_client - pooled).sum(axis=1)
