"""Any Hugging Face dataset saved on disk (``dataset=hf``; needs ``pip install 'fedpoison[hf]'``).

``dataset.path`` is a ``Dataset(Dict).save_to_disk`` directory (``format: null``) or a directory
of files read by one of ``datasets``' packaged builders (``format: parquet | csv | json |
imagefolder``). Nothing is fetched: ``HF_HUB_OFFLINE`` and ``HF_DATASETS_OFFLINE`` are set
before ``datasets`` is imported, so a name that is not on disk fails instead of reaching the Hub.

The chosen columns become the tensors the built-in datasets produce: an ``Image`` column is
decoded to ``uint8`` ``(N, C, H, W)`` (greyscale C = 1, colour channels last → first) and scaled
to [0, 1]; a numeric column keeps its values (a vector → ``(N, 1, 1, D)``, a matrix →
``(N, 1, H, W)``, ``H × W × C`` → ``(N, C, H, W)``); several columns (tabular CSV) are stacked as
one vector. With ``normalize`` each channel is standardised with the training split's mean and
(population) std, as :func:`fedpoison.data.arrays.to_image_dataset` does. Labels are a
``ClassLabel`` (its classes) or integers ≥ 0 (classes 0..max).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fedpoison.data.base import DATASETS, ImageDataset
from fedpoison.extras import require

OFFLINE = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")


def _datasets() -> Any:
    """``datasets``, imported offline (and kept offline if it was imported before)."""
    for variable in OFFLINE:
        os.environ[variable] = "1"
    module = require("datasets", "hf", "dataset=hf")
    module.config.HF_HUB_OFFLINE = module.config.HF_DATASETS_OFFLINE = True
    return module


def _load(path: Path, format: str | None) -> Any:
    """The ``DatasetDict`` at ``path``."""
    hf = _datasets()
    if not path.exists():
        raise FileNotFoundError(f"dataset.path={path} does not exist")
    if format is None:
        loaded = hf.load_from_disk(str(path))
        if isinstance(loaded, hf.Dataset):
            raise ValueError(
                f"dataset.path={path} holds one split; save a DatasetDict with the train and "
                "test splits (DatasetDict({'train': ..., 'test': ...}).save_to_disk(path))"
            )
        return loaded
    return hf.load_dataset(format, data_dir=str(path))


def _split(splits: Any, name: str, key: str, path: Path) -> Any:
    if name not in splits:
        raise ValueError(
            f"dataset.{key}={name}: {path} has no split {name!r}; it has {', '.join(splits)}"
        )
    return splits[name]


def _check_columns(split: Any, columns: Sequence[str], where: str) -> None:
    for column in columns:
        if column not in split.column_names:
            raise ValueError(
                f"{where}: no column {column!r}; it has {', '.join(split.column_names)}"
            )


def _images(split: Any, columns: Sequence[str], image_mode: str | None) -> np.ndarray:
    """``(N, C, H, W)`` examples of ``columns`` (``uint8`` for an ``Image`` column)."""
    hf = _datasets()
    if len(columns) > 1:
        return np.stack([np.asarray(split[c], dtype=np.float32) for c in columns], 1)[
            :, None, None, :
        ]
    column = columns[0]
    if isinstance(split.features[column], hf.Image):
        decoded = [im.convert(image_mode) if image_mode else im for im in split[column]]
        sizes = {im.size + (im.mode,) for im in decoded}
        if len(sizes) > 1:
            raise ValueError(
                f"dataset.image_column={column}: images differ in size or mode "
                f"({sorted(sizes)[:3]}); resize them, or set dataset.image_mode=L or RGB"
            )
        array = np.stack([np.asarray(im, dtype=np.uint8) for im in decoded])
    else:
        array = np.asarray(split.with_format("numpy")[column], dtype=np.float32)
    if array.ndim == 2:
        return array[:, None, None, :]
    if array.ndim == 3:
        return array[:, None, :, :]
    if array.ndim == 4:
        return np.ascontiguousarray(array.transpose(0, 3, 1, 2))
    raise ValueError(f"dataset.image_column={column}: cannot use examples of shape {array.shape}")


def _labels(split: Any, column: str) -> np.ndarray:
    labels = np.asarray(split[column])
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0:
        raise ValueError(
            f"dataset.label_column={column} must hold integers ≥ 0 or a ClassLabel, got "
            f"{labels.dtype} values such as {labels[:3].tolist()}"
        )
    return labels.astype(np.int64)


def _tensors(x_train: np.ndarray, x_test: np.ndarray, normalize: bool) -> list[torch.Tensor]:
    scale = 255.0 if x_train.dtype == np.uint8 else 1.0
    out = [torch.from_numpy(x.astype(np.float32)).div_(scale) for x in (x_train, x_test)]
    if normalize:
        mean = out[0].mean(dim=(0, 2, 3), keepdim=True)
        std = out[0].std(dim=(0, 2, 3), keepdim=True, correction=0)
        std = torch.where(std > 0, std, torch.ones_like(std))  # a constant channel stays put
        for x in out:
            x.sub_(mean).div_(std)
    return out


@DATASETS.register("hf")
def load_hf(
    path: str | None = None,
    format: str | None = None,
    name: str | None = None,
    image_column: str | list[str] = "image",
    label_column: str = "label",
    train_split: str = "train",
    test_split: str = "test",
    keep_columns: Sequence[str] = (),
    image_mode: str | None = None,
    normalize: bool = True,
) -> ImageDataset:
    """The train and test splits of the Hugging Face dataset at ``path`` (see the module)."""
    if not path:
        raise ValueError("dataset=hf needs dataset.path=DIR (a save_to_disk directory or files)")
    root = Path(path).expanduser()
    splits = _load(root, format)
    columns = [image_column] if isinstance(image_column, str) else list(image_column)
    train = _split(splits, train_split, "train_split", root)
    test = _split(splits, test_split, "test_split", root)
    _check_columns(train, [*columns, label_column, *keep_columns], f"{train_split} split")
    _check_columns(test, [*columns, label_column], f"{test_split} split")
    x_train, x_test = (_images(s, columns, image_mode) for s in (train, test))
    y_train, y_test = _labels(train, label_column), _labels(test, label_column)
    label_feature = train.features[label_column]
    num_classes = int(
        getattr(label_feature, "num_classes", None) or max(y_train.max(), y_test.max()) + 1
    )
    x_tr, x_te = _tensors(x_train, x_test, normalize)
    return ImageDataset(
        name=name or root.name,
        x_train=x_tr,
        y_train=torch.from_numpy(y_train),
        x_test=x_te,
        y_test=torch.from_numpy(y_test),
        num_classes=num_classes,
        columns={c: np.asarray(train[c]) for c in keep_columns},
    )
