"""scikit-learn's bundled 8×8 digits: the embedded default dataset (no files, no network)."""

from __future__ import annotations

import math

import numpy as np
import torch

from fedpoison.data.arrays import DatasetSpec, RawSplits
from fedpoison.data.base import DATASETS, ImageDataset
from fedpoison.data.sources import read_cache, write_cache

NUM_DIGITS = 1797


def _spec(test_fraction: float, split_seed: int) -> DatasetSpec:
    num_test = math.ceil(test_fraction * NUM_DIGITS)  # as sklearn's train_test_split rounds
    return DatasetSpec(
        name=f"digits-{test_fraction:g}-{split_seed}",
        image_shape=(1, 8, 8),
        num_classes=10,
        num_train=NUM_DIGITS - num_test,
        num_test=num_test,
        sha256=None,
        install_hint="scikit-learn ships it (pip install scikit-learn)",
    )


def _split(test_fraction: float, split_seed: int) -> RawSplits:
    """The stratified split, computed with scikit-learn (pixels are the integers 0–16)."""
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_load_digits()
    images = bunch.images.astype(np.uint8)[:, None, :, :]
    labels = bunch.target.astype(np.uint8)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=test_fraction, random_state=split_seed, stratify=labels
    )
    return RawSplits(*(np.ascontiguousarray(a) for a in (x_tr, y_tr, x_te, y_te)))


@DATASETS.register("digits")
def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> ImageDataset:
    """1,797 8×8 grey images, 10 classes; a fixed, stratified ``test_fraction`` is held out.

    Pixels (0–16) are scaled to [0, 1]. The split depends only on ``split_seed``, not on the
    run seed, so every run of a study evaluates on the same test set. The split is cached in
    the ``.npz`` cache, so later runs skip importing scikit-learn (~1.5 s of start-up).
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"dataset.test_fraction must be in (0, 1), got {test_fraction}")
    spec = _spec(test_fraction, split_seed)
    raw = read_cache(spec)
    if raw is None:
        raw = _split(test_fraction, split_seed)
        write_cache(spec, raw)

    def tensor(a: np.ndarray, images: bool) -> torch.Tensor:
        return torch.from_numpy(a.astype(np.float32) / 16.0 if images else a.astype(np.int64))

    return ImageDataset(
        name="digits",
        x_train=tensor(raw.x_train, True),
        y_train=tensor(raw.y_train, False),
        x_test=tensor(raw.x_test, True),
        y_test=tensor(raw.y_test, False),
        num_classes=10,
    )
