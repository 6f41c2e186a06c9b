"""scikit-learn's bundled 8×8 digits: the embedded default dataset (no files, no network)."""

from __future__ import annotations

import numpy as np
import torch

from fedpoison.data.base import DATASETS, ImageDataset


@DATASETS.register("digits")
def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> ImageDataset:
    """1,797 8×8 grey images, 10 classes; a fixed, stratified ``test_fraction`` is held out.

    Pixels (0–16) are scaled to [0, 1]. The split depends only on ``split_seed``, not on the
    run seed, so every run of a study evaluates on the same test set.
    """
    from sklearn.datasets import load_digits as sk_load_digits
    from sklearn.model_selection import train_test_split

    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"dataset.test_fraction must be in (0, 1), got {test_fraction}")
    bunch = sk_load_digits()
    images = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
    labels = bunch.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        images, labels, test_size=test_fraction, random_state=split_seed, stratify=labels
    )
    return ImageDataset(
        name="digits",
        x_train=torch.from_numpy(np.ascontiguousarray(x_tr)),
        y_train=torch.from_numpy(np.ascontiguousarray(y_tr)),
        x_test=torch.from_numpy(np.ascontiguousarray(x_te)),
        y_test=torch.from_numpy(np.ascontiguousarray(y_te)),
        num_classes=10,
    )
