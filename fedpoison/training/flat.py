"""Between Flower records and the ``(n, d)`` update matrix the rules work on.

Convention (docs/conventions.md §C1): row i is ``Δ_i = w_i − w_global`` of the i-th
participating client in ascending client id, float32. The server applies ``w ← w + η·Agg(Δ)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from flwr.app import ArrayRecord

from fedpoison.records import decode, encode, expected_npy, new_array_record, npy_payload


@dataclass(frozen=True)
class ModelLayout:
    """Names, shapes and dtypes of the model's arrays, in the global record's key order."""

    names: tuple[str, ...]
    shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]

    @classmethod
    def of(cls, record: ArrayRecord) -> ModelLayout:
        arrays = [record[k] for k in record]
        return cls(
            tuple(record.keys()),
            tuple(tuple(a.shape) for a in arrays),
            tuple(a.dtype for a in arrays),
        )

    @cached_property
    def sizes(self) -> list[int]:
        return [math.prod(s) for s in self.shapes]

    @cached_property
    def dim(self) -> int:
        """``d``, the number of scalars in the model."""
        return sum(self.sizes)

    @cached_property
    def expected(self) -> list[tuple[np.dtype, bytes]]:
        """Per array, the dtype and the exact ``.npy`` header a record of this layout holds."""
        pairs = zip(self.dtypes, self.shapes, strict=True)
        return [expected_npy(dtype, shape)[:2] for dtype, shape in pairs]


def flatten(
    record: ArrayRecord, layout: ModelLayout, out: np.ndarray | None = None
) -> torch.Tensor:
    """The record's arrays concatenated into one float32 vector ``(d,)`` in layout order,
    written into ``out`` (a float32 ``(d,)`` buffer, e.g. a row of the round's matrix) if given.

    Raises ``ValueError`` when the record's names, shapes or dtypes do not match ``layout``.
    """
    if tuple(record.keys()) != layout.names:
        raise ValueError(
            f"array names {sorted(record.keys())} differ from the model's {sorted(layout.names)}"
        )
    flat = np.empty(layout.dim, dtype=np.float32) if out is None else out
    offset = 0
    for name, shape, dtype, size, (np_dtype, head) in zip(
        layout.names, layout.shapes, layout.dtypes, layout.sizes, layout.expected, strict=True
    ):
        array = record[name]
        if array.dtype == dtype and array.shape == shape:  # a well-formed reply: bytes to row
            values = npy_payload(array.data, np_dtype, head, size)
            if values is not None:
                flat[offset : offset + size] = values
                offset += size
                continue
        arr = decode(array)
        if tuple(arr.shape) != shape:
            raise ValueError(f"array {name!r} has shape {tuple(arr.shape)}, expected {shape}")
        if arr.dtype != np.dtype(dtype):
            raise ValueError(f"array {name!r} has dtype {arr.dtype}, expected {dtype}")
        flat[offset : offset + size] = arr.reshape(-1)
        offset += size
    return torch.from_numpy(flat)


def unflatten(vector: torch.Tensor, layout: ModelLayout) -> ArrayRecord:
    """Inverse of :func:`flatten`: an ``ArrayRecord`` with the layout's names, shapes, dtypes."""
    flat = vector.detach().cpu().numpy()
    arrays = {}
    offset = 0
    for name, shape, dtype, size in zip(
        layout.names, layout.shapes, layout.dtypes, layout.sizes, strict=True
    ):
        arrays[name] = encode(flat[offset : offset + size].reshape(shape).astype(dtype, copy=False))
        offset += size
    return new_array_record(arrays)


def stored(vector: torch.Tensor, layout: ModelLayout) -> torch.Tensor:
    """``flatten(unflatten(vector, layout), layout)`` without the records: ``vector`` (CPU,
    float32) as the layout's dtypes store it, so a kept global vector equals a decoded one."""
    if all(dtype == "float32" for dtype in layout.dtypes):
        return vector
    flat = vector.detach().numpy().copy()
    offset = 0
    for dtype, size in zip(layout.dtypes, layout.sizes, strict=True):
        segment = flat[offset : offset + size]
        segment[:] = segment.astype(dtype, copy=False)
        offset += size
    return torch.from_numpy(flat)


def update_matrix(client_weights: torch.Tensor, global_weights: torch.Tensor) -> torch.Tensor:
    """``Δ_i = w_i − w_global`` for stacked client models ``(n, d)``; rows keep their order."""
    return client_weights - global_weights
