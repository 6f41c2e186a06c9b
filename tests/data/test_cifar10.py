"""CIFAR-10 binary records: layout, directory and archive sources, download check, errors."""

from __future__ import annotations

import io
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fedpoison.data import cifar10
from fedpoison.data.download import md5_hex
from fedpoison.data.formats import FormatError

PER_BATCH = 10  # records per training batch in the fixtures: 50 train, 10 test


@pytest.fixture
def tiny_cifar(isolated: Path, monkeypatch: pytest.MonkeyPatch):
    spec = replace(cifar10.CIFAR10, num_train=5 * PER_BATCH, num_test=PER_BATCH)
    monkeypatch.setattr(cifar10, "CIFAR10", spec)
    return spec


def _records(labels: list[int], marker: int) -> bytes:
    """Records whose red plane is ``marker``, green ``marker + 1``, blue ``marker + 2``, with a
    row index in the first pixel of each plane (to check the row-major layout)."""
    out = bytearray()
    for label in labels:
        planes = np.stack([np.full((32, 32), marker + c, np.uint8) for c in range(3)])
        planes[:, 1, 0] = 100  # row 1, column 0
        out += bytes([label]) + planes.tobytes()
    return bytes(out)


def _batches(marker: int) -> dict[str, bytes]:
    balanced = list(range(10))
    return {
        name: _records(balanced, marker) for name in (*cifar10.TRAIN_BATCHES, cifar10.TEST_BATCH)
    }


def _write_dir(root: Path, batches: dict[str, bytes]) -> Path:
    directory = root / cifar10.BIN_DIR
    directory.mkdir(parents=True)
    for name, data in batches.items():
        (directory / name).write_bytes(data)
    return root


def _write_archive(path: Path, batches: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in batches.items():
            info = tarfile.TarInfo(f"{cifar10.BIN_DIR}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_record_layout() -> None:
    data = _records([3, 7], marker=10)
    x, y = cifar10.read_records(io.BytesIO(data), len(data), 2, "fixture")
    assert x.shape == (2, 3, 32, 32) and x.dtype == np.uint8
    np.testing.assert_array_equal(y, [3, 7])
    assert x[0, 0, 0, 0] == 10 and x[0, 1, 0, 0] == 11 and x[0, 2, 0, 0] == 12  # R, G, B planes
    assert x[1, 2, 1, 0] == 100 and x[1, 2, 0, 1] == 12  # row-major within a plane


def test_record_errors() -> None:
    data = _records([1, 2], marker=0)
    with pytest.raises(FormatError, match="expected 3 records"):
        cifar10.read_records(io.BytesIO(data), len(data), 3, "fixture")
    with pytest.raises(FormatError, match="ends before record"):
        cifar10.read_records(io.BytesIO(data[:-1]), len(data), 2, "fixture")
    bad = bytes([10]) + data[1:]
    with pytest.raises(FormatError, match="label byte 10"):
        cifar10.read_records(io.BytesIO(bad), len(bad), 2, "fixture")


def test_load_from_directory(isolated: Path, tiny_cifar) -> None:
    root = _write_dir(isolated / "root", _batches(marker=20))
    dataset = cifar10.load_cifar10(root=str(root), normalize=False)
    assert dataset.name == "cifar10" and dataset.input_shape == (3, 32, 32)
    assert dataset.x_train.shape == (50, 3, 32, 32) and dataset.x_test.shape == (10, 3, 32, 32)
    assert round(float(dataset.x_train[0, 2, 0, 0]) * 255) == 22
    standard = cifar10.load_cifar10(root=str(root))
    per_channel = standard.x_train.mean(dim=(0, 2, 3))
    assert per_channel.abs().max() < 1e-5


def test_load_from_archive_without_extracting(isolated: Path, tiny_cifar) -> None:
    root = isolated / "root"
    _write_archive(root / cifar10.ARCHIVE, _batches(marker=30))
    dataset = cifar10.load_cifar10(root=str(root), normalize=False)
    assert round(float(dataset.x_test[0, 0, 0, 0]) * 255) == 30
    assert sorted(p.name for p in root.iterdir()) == [cifar10.ARCHIVE]


def test_archive_missing_member(isolated: Path, tiny_cifar) -> None:
    batches = _batches(marker=0)
    del batches[cifar10.TEST_BATCH]
    root = isolated / "root"
    _write_archive(root / cifar10.ARCHIVE, batches)
    with pytest.raises(FormatError, match="not a complete CIFAR-10 binary archive"):
        cifar10.load_cifar10(root=str(root))


def test_unbalanced_classes_are_refused(isolated: Path, tiny_cifar) -> None:
    batches = _batches(marker=0)
    batches[cifar10.TEST_BATCH] = _records([0] * 10, marker=0)
    with pytest.raises(ValueError, match="balanced|cover"):
        cifar10.load_cifar10(root=str(_write_dir(isolated / "root", batches)))


def test_download_checks_the_published_md5(isolated: Path, tiny_cifar, monkeypatch) -> None:
    archive = _write_archive(isolated / "mirror" / cifar10.ARCHIVE, _batches(marker=40))
    monkeypatch.setattr(cifar10, "ARCHIVE_URL", archive.as_uri())
    with pytest.raises(ValueError, match="MD5"):
        cifar10.load_cifar10(download=True)
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", md5_hex(archive))
    dataset = cifar10.load_cifar10(download=True, normalize=False)
    assert round(float(dataset.x_train[0, 0, 0, 0]) * 255) == 40
    dataset = cifar10.load_cifar10(normalize=False)  # now from the cache, no download
    assert round(float(dataset.x_train[0, 0, 0, 0]) * 255) == 40
