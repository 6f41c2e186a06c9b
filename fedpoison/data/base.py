"""The in-memory dataset every client and the server share, and the dataset registry."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from fedpoison.registry import Registry


@dataclass(frozen=True)
class ImageDataset:
    """Train and test tensors of one dataset, already normalised.

    ``x_*`` are float32 ``(N, C, H, W)``; ``y_*`` are int64 ``(N,)``. Clients hold index
    arrays into ``x_train`` (never copies), so one instance serves any population size.
    ``columns`` holds further per-example columns of the training split that a loader kept for
    partitioners reading them (``partition=flwr``: a natural id); empty for the built-ins.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    columns: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for split, x, y in (
            ("train", self.x_train, self.y_train),
            ("test", self.x_test, self.y_test),
        ):
            if x.ndim != 4 or y.ndim != 1 or x.shape[0] != y.shape[0]:
                raise ValueError(
                    f"dataset {self.name!r} {split} split: expected x (N, C, H, W) and y (N,), "
                    f"got {tuple(x.shape)} and {tuple(y.shape)}"
                )

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one example."""
        c, h, w = self.x_train.shape[1:]
        return int(c), int(h), int(w)


DatasetLoader = Callable[..., ImageDataset]
DATASETS: Registry[DatasetLoader] = Registry("dataset")
