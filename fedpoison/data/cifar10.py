"""CIFAR-10 (Krizhevsky 2009): 32×32 colour images, 10 classes, 50,000 train / 10,000 test.

Only the dataset's **binary version** is read: fixed 3,073-byte records, one label byte then
1,024 red, 1,024 green and 1,024 blue bytes (each plane row-major), i.e. ``(3, 32, 32)``
directly. The python version's batches are pickles, and unpickling runs whatever code the
file names, so fedpoison never unpickles them; the binary version holds the same images in
the same order. Sources, in order (:mod:`fedpoison.data.sources`):

1. ``<root>/cifar-10-batches-bin/{data_batch_1..5,test_batch}.bin``, else the archive
   ``<root>/cifar-10-binary.tar.gz`` (its six members are read in place, never extracted);
   ``root`` is the loader argument or ``$FEDPOISON_DATA``;
2. the ``.npz`` cache;
3. (no installed copy is known);
4. with ``download=True``, the archive from the authors' page, accepted only if its MD5 is the
   one published there.

No SHA-256 of the decoded arrays is pinned (no copy was available offline to compute it);
the checks are the record layout, the shapes and exactly 5,000 / 1,000 examples per class.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
from pathlib import Path
from typing import cast

import numpy as np

from fedpoison.data.arrays import DatasetSpec, RawSplits, to_image_dataset
from fedpoison.data.base import DATASETS, ImageDataset
from fedpoison.data.download import fetch, md5_hex
from fedpoison.data.formats import FormatError
from fedpoison.data.sources import Source, cache_dir, data_root, load_raw

BIN_DIR = "cifar-10-batches-bin"
ARCHIVE = "cifar-10-binary.tar.gz"
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"
ARCHIVE_MD5 = (
    "c32a1d4ab5d03f1284b67883e8d87530"  # published on https://www.cs.toronto.edu/~kriz/cifar.html
)
TRAIN_BATCHES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_BATCH = "test_batch.bin"
RECORD_BYTES = 1 + 3 * 32 * 32

CIFAR10 = DatasetSpec(
    name="cifar10",
    image_shape=(3, 32, 32),
    num_classes=10,
    num_train=50_000,
    num_test=10_000,
    sha256=None,
    install_hint=f"put {BIN_DIR} (from {ARCHIVE_URL}) under DIR and pass dataset.root=DIR",
    class_balanced=True,
)


def read_records(
    stream: io.BufferedIOBase, size: int, num_records: int, source: str
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``num_records`` binary CIFAR-10 records; ``size`` is checked before reading."""
    if size != num_records * RECORD_BYTES:
        raise FormatError(
            f"{source}: {size} bytes, expected {num_records} records × {RECORD_BYTES} bytes "
            f"= {num_records * RECORD_BYTES}"
        )
    buf = bytearray(size)
    if stream.readinto(buf) != size:
        raise FormatError(f"{source}: file ends before record {num_records}")
    records = np.frombuffer(buf, np.uint8).reshape(num_records, RECORD_BYTES)
    labels = records[:, 0].copy()
    if num_records and labels.max() > 9:
        raise FormatError(f"{source}: label byte {labels.max()} outside 0..9")
    return records[:, 1:].reshape(num_records, 3, 32, 32).copy(), labels


def _assemble(read: dict[str, tuple[np.ndarray, np.ndarray]]) -> RawSplits:
    train = [read[name] for name in TRAIN_BATCHES]
    return RawSplits(
        x_train=np.concatenate([x for x, _ in train]),
        y_train=np.concatenate([y for _, y in train]),
        x_test=read[TEST_BATCH][0],
        y_test=read[TEST_BATCH][1],
    )


def _records_per_file(spec: DatasetSpec) -> dict[str, int]:
    return {
        **{name: spec.num_train // len(TRAIN_BATCHES) for name in TRAIN_BATCHES},
        TEST_BATCH: spec.num_test,
    }


def read_bin_dir(directory: Path, spec: DatasetSpec) -> RawSplits | None:
    """The six ``.bin`` batches in ``directory``; ``None`` if any is missing."""
    counts = _records_per_file(spec)
    if not all((directory / name).is_file() for name in counts):
        return None
    read = {}
    for name, n in counts.items():
        path = directory / name
        with path.open("rb") as f:
            read[name] = read_records(f, path.stat().st_size, n, str(path))
    return _assemble(read)


def read_archive(path: Path, spec: DatasetSpec) -> RawSplits | None:
    """The six batches inside ``cifar-10-binary.tar.gz``, read without extracting anything."""
    if not path.is_file():
        return None
    read = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for name, n in _records_per_file(spec).items():
                member = tar.getmember(f"{BIN_DIR}/{name}")
                stream = tar.extractfile(member) if member.isfile() else None
                if stream is None:
                    raise FormatError(f"{path}: {member.name} is not a regular file")
                # tarfile's stub says IO[bytes]; extractfile() returns an ExFileObject, an
                # io.BufferedReader (with readinto).
                with cast(io.BufferedReader, stream) as member_stream:
                    read[name] = read_records(
                        member_stream, member.size, n, f"{path}:{member.name}"
                    )
    except (KeyError, tarfile.TarError, EOFError) as err:
        raise FormatError(f"{path}: not a complete CIFAR-10 binary archive ({err})") from err
    return _assemble(read)


def download_archive(spec: DatasetSpec) -> RawSplits | None:
    """Fetch the binary archive, check its published MD5, and decode it."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        archive = fetch([ARCHIVE_URL], Path(tmp) / ARCHIVE)
        digest = md5_hex(archive)
        if digest != ARCHIVE_MD5:
            raise ValueError(f"{ARCHIVE_URL}: MD5 {digest}, expected the published {ARCHIVE_MD5}")
        return read_archive(archive, spec)


@DATASETS.register("cifar10")
def load_cifar10(
    root: str | None = None, download: bool = False, normalize: bool = True
) -> ImageDataset:
    """CIFAR-10, 50k/10k, ``(3, 32, 32)``; pixels in [0, 1], then per-channel standardised."""
    spec = CIFAR10
    base = data_root(root)
    local = []
    if base is not None:
        local = [
            Source(f"directory {base / BIN_DIR}", lambda: read_bin_dir(base / BIN_DIR, spec)),
            Source(f"archive {base / ARCHIVE}", lambda: read_archive(base / ARCHIVE, spec)),
        ]
    remote = Source(ARCHIVE_URL, lambda: download_archive(spec))
    return to_image_dataset(spec, load_raw(spec, local, [], remote, download), normalize)
