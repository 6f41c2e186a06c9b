"""Decoded raw splits, what a dataset must look like, and the conversion to ``ImageDataset``.

Every file-backed dataset goes through the same three steps: a source decodes the files to
``uint8`` arrays (:class:`RawSplits`), :func:`verify` checks them against the dataset's
:class:`DatasetSpec` (shapes, label range, class balance, SHA-256 of the decoded bytes), and
:func:`to_image_dataset` scales and standardises them into tensors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

from fedpoison.data.base import ImageDataset

SPLITS = ("train", "test")


@dataclass(frozen=True)
class RawSplits:
    """Decoded ``uint8`` images ``(N, C, H, W)`` and ``uint8`` labels ``(N,)`` of both splits."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(x, y)`` of ``"train"`` or ``"test"``."""
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}")


@dataclass(frozen=True)
class DatasetSpec:
    """What a correct copy of a dataset decodes to.

    ``sha256`` maps ``"train"``/``"test"`` to :func:`split_digest` of the published data;
    ``None`` means no digest is pinned (then only the structural checks run).
    """

    name: str  # registry name, ImageDataset.name and cache-file stem
    image_shape: tuple[int, int, int]  # (C, H, W)
    num_classes: int
    num_train: int
    num_test: int
    sha256: Mapping[str, str] | None
    install_hint: str  # how to provide an offline copy; quoted in FileNotFoundError
    class_balanced: bool = False  # every class has exactly N / num_classes examples per split


def split_digest(x: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 of the C-ordered ``uint8`` image bytes followed by the ``uint8`` label bytes."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(x, dtype=np.uint8).data)
    digest.update(np.ascontiguousarray(y, dtype=np.uint8).data)
    return digest.hexdigest()


def verify(spec: DatasetSpec, raw: RawSplits, source: str) -> None:
    """Raise ``ValueError`` naming ``source`` unless ``raw`` matches ``spec`` exactly."""
    sizes = {"train": spec.num_train, "test": spec.num_test}
    for split in SPLITS:
        x, y = raw.split(split)
        n = sizes[split]
        where = f"{spec.name} {split} split from {source}"
        if x.dtype != np.uint8 or y.dtype != np.uint8:
            raise ValueError(f"{where}: expected uint8 arrays, got {x.dtype} and {y.dtype}")
        if x.shape != (n, *spec.image_shape) or y.shape != (n,):
            raise ValueError(
                f"{where}: expected images {(n, *spec.image_shape)} and labels ({n},), "
                f"got {x.shape} and {y.shape}"
            )
        counts = np.bincount(y, minlength=spec.num_classes)
        if len(counts) != spec.num_classes or counts.sum() != n or counts.min() == 0:
            raise ValueError(
                f"{where}: labels must cover 0..{spec.num_classes - 1}, counts {counts.tolist()}"
            )
        if spec.class_balanced and np.any(counts != n // spec.num_classes):
            raise ValueError(f"{where}: classes should be balanced, counts {counts.tolist()}")
        if spec.sha256 is not None and split_digest(x, y) != spec.sha256[split]:
            raise ValueError(
                f"{where}: SHA-256 of the decoded arrays is {split_digest(x, y)}, expected "
                f"{spec.sha256[split]}; the files are corrupt or a different version — replace them"
            )


def to_image_dataset(spec: DatasetSpec, raw: RawSplits, normalize: bool) -> ImageDataset:
    """Scale pixels to [0, 1]; with ``normalize``, also standardise each channel.

    Standardisation uses the mean and (population) standard deviation of each channel over
    all training pixels, applied to both splits (MNIST: 0.1307 / 0.3081, as is customary).
    Labels become ``int64``.
    """
    x_train = torch.from_numpy(raw.x_train).float().div_(255.0)
    x_test = torch.from_numpy(raw.x_test).float().div_(255.0)
    if normalize:
        mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
        std = x_train.std(dim=(0, 2, 3), keepdim=True, correction=0)
        x_train.sub_(mean).div_(std)
        x_test.sub_(mean).div_(std)
    return ImageDataset(
        name=spec.name,
        x_train=x_train,
        y_train=torch.from_numpy(raw.y_train.astype(np.int64)),
        x_test=x_test,
        y_test=torch.from_numpy(raw.y_test.astype(np.int64)),
        num_classes=spec.num_classes,
    )
