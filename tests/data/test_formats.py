"""IDX and label-first CSV readers: round trips, and malformed files fail fast and cheaply."""

from __future__ import annotations

import gzip
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fedpoison.data.formats import FormatError, read_idx, read_label_pixel_csv


def _peak_bytes(fn) -> int:
    """Peak traced allocation while ``fn()`` runs (numpy and bytearray buffers are traced)."""
    tracemalloc.start()
    try:
        fn()
    except FormatError:
        pass
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


# ---------------------------------------------------------------- IDX


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize(
    ("type_code", "dtype"),
    [
        (0x08, np.uint8),
        (0x09, np.int8),
        (0x0B, np.int16),
        (0x0C, np.int32),
        (0x0D, np.float32),
        (0x0E, np.float64),
    ],
)
def test_idx_round_trip_every_type(
    tmp_path: Path, idx_bytes, gz: bool, type_code: int, dtype
) -> None:
    array = (np.arange(2 * 3 * 4) - 7).reshape(2, 3, 4).astype(dtype)
    if dtype == np.uint8:
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    data = idx_bytes(array, type_code)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    path.write_bytes(gzip.compress(data) if gz else data)
    out = read_idx(path, expected_shape=(2, 3, 4))
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)


@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=4), seed=st.integers(0, 2**16))
def test_idx_round_trip_any_shape(
    tmp_path_factory: pytest.TempPathFactory, idx_bytes, shape, seed
) -> None:
    array = np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
    path = tmp_path_factory.mktemp("idx") / "a.idx"
    path.write_bytes(idx_bytes(array))
    np.testing.assert_array_equal(read_idx(path, tuple(shape)), array)


def test_idx_bad_magic(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    path.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(FormatError, match="not an IDX file"):
        read_idx(path)


def test_idx_unknown_type_code(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    path.write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x00")
    with pytest.raises(FormatError, match="not an IDX file"):
        read_idx(path)


def test_idx_header_ends_in_dimensions(tmp_path: Path) -> None:
    path = tmp_path / "bad"
    path.write_bytes(b"\x00\x00\x08\x03\x00\x00\x00\x02")
    with pytest.raises(FormatError, match="header ends"):
        read_idx(path)


def test_idx_wrong_dimensions(tmp_path: Path, idx_bytes) -> None:
    path = tmp_path / "a"
    path.write_bytes(idx_bytes(np.zeros((3, 28, 28), np.uint8)))
    with pytest.raises(FormatError, match=r"dimensions \(3, 28, 28\), expected \(4, 28, 28\)"):
        read_idx(path, expected_shape=(4, 28, 28))


@pytest.mark.parametrize("gz", [False, True])
def test_idx_truncated_or_padded(tmp_path: Path, idx_bytes, gz: bool) -> None:
    data = idx_bytes(np.ones((10, 28, 28), np.uint8))
    for bad in (data[:-5], data + b"\x00"):
        path = tmp_path / ("a.gz" if gz else "a")
        path.write_bytes(gzip.compress(bad) if gz else bad)
        with pytest.raises(FormatError, match="truncated or padded"):
            read_idx(path)


def test_idx_corrupt_gzip_stream(tmp_path: Path, idx_bytes) -> None:
    compressed = gzip.compress(idx_bytes(np.arange(10_000, dtype=np.uint8) % 7))
    path = tmp_path / "a.gz"
    path.write_bytes(compressed[:30] + compressed[-8:])  # body cut out, trailer (ISIZE) kept
    with pytest.raises(FormatError, match="corrupt gzip|payload"):
        read_idx(path)
    path.write_bytes(b"\x1f\x8b" + b"\x00" * 5)
    with pytest.raises(FormatError, match="too short"):
        read_idx(path)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_huge_header_is_refused_before_allocating(tmp_path: Path, gz: bool) -> None:
    # claims 2**31 × 2**31 bytes; the file is a few bytes long
    data = b"\x00\x00\x08\x02" + (2**31).to_bytes(4, "big") * 2 + b"\x00" * 16
    path = tmp_path / ("huge.gz" if gz else "huge")
    path.write_bytes(gzip.compress(data) if gz else data)
    with pytest.raises(FormatError, match="limit"):
        read_idx(path)
    assert _peak_bytes(lambda: read_idx(path)) < 1 << 20


def test_idx_size_mismatch_is_refused_before_allocating(tmp_path: Path) -> None:
    # a plausible header (60,000 × 28 × 28 = 47 MB) on a 1 kB file
    path = tmp_path / "short.gz"
    path.write_bytes(
        gzip.compress(
            b"\x00\x00\x08\x03" + bytes.fromhex("0000ea60 0000001c 0000001c") + b"\x00" * 1000
        )
    )
    with pytest.raises(FormatError, match="truncated or padded"):
        read_idx(path)
    assert _peak_bytes(lambda: read_idx(path)) < 1 << 20


def test_idx_max_bytes(tmp_path: Path, idx_bytes) -> None:
    path = tmp_path / "a"
    path.write_bytes(idx_bytes(np.zeros(100, np.uint8)))
    with pytest.raises(FormatError, match="above the 99 limit"):
        read_idx(path, max_bytes=99)


# ---------------------------------------------------------------- CSV


def _csv(rows: list[list[int]], header: str | None = None, newline: str = "\n") -> bytes:
    lines = ([header] if header is not None else []) + [",".join(map(str, r)) for r in rows]
    return (newline.join(lines) + newline).encode()


@pytest.mark.parametrize("header", [None, "label,1x1,1x2,2x1,2x2"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_csv_round_trip(tmp_path: Path, header: str | None, newline: str) -> None:
    rows = [[3, 0, 255, 7, 12], [9, 1, 2, 3, 4], [0, 200, 100, 50, 25]]
    path = tmp_path / "a.csv"
    path.write_bytes(_csv(rows, header, newline))
    pixels, labels = read_label_pixel_csv(path, num_rows=3, num_pixels=4)
    assert pixels.dtype == labels.dtype == np.uint8
    assert pixels.flags.c_contiguous and labels.flags.c_contiguous
    np.testing.assert_array_equal(labels, [3, 9, 0])
    np.testing.assert_array_equal(pixels, np.array(rows)[:, 1:])


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (_csv([[1, 2, 3]], header="label,a,b,c"), "header has 4 fields, expected 3"),
        (_csv([[1, 2, 300], [1, 2, 3]]), "300"),
        (_csv([[1, 2, -3], [1, 2, 3]]), "-3"),
        (_csv([[100, 200, 250], [100, 200]]), "columns"),
        (_csv([[1, 2, 3], [4, 5, 6], [7, 8, 9]]), r"table is \(3, 3\), expected \(2, 3\)"),
        (b"1,2,3\nx,1,2\n", "'x'"),
    ],
    ids=["header", "too-large", "negative", "ragged", "extra-row", "not-a-number"],
)
def test_csv_malformed(tmp_path: Path, content: bytes, match: str) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(content)
    with pytest.raises(FormatError, match=match):
        read_label_pixel_csv(path, num_rows=2, num_pixels=2)


def test_csv_missing_rows(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(_csv([[1, 22, 33]] * 3))
    with pytest.raises(FormatError, match=r"expected \(4, 3\)"):
        read_label_pixel_csv(path, num_rows=4, num_pixels=2)


def test_csv_size_checked_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(_csv([[1] * 785] * 3))
    with pytest.raises(FormatError, match="cannot hold 60000 rows"):
        read_label_pixel_csv(path, num_rows=60_000, num_pixels=784)
    assert (
        _peak_bytes(lambda: read_label_pixel_csv(path, num_rows=60_000, num_pixels=784)) < 1 << 20
    )
