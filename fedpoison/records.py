"""Fast, validated conversion between torch/NumPy arrays and Flower ``Array`` records.

Flower stores each array as ``.npy`` bytes and parses the header with ``ast.literal_eval`` on
every ``Array.numpy()`` call; for small models that parsing, not training, dominated a round
(about 60 % of the inline engine's overhead at 100 clients). Here headers are built once per
(dtype, shape) and decoding reads the bytes after the header directly, after checking that
the header and the record's ``dtype``/``shape`` agree and the length is exact — anything
unusual falls back to Flower's own, fully checking ``Array.numpy()``.

Encoding builds the ``Array`` and ``ArrayRecord`` instances directly (:func:`new_array`,
:func:`new_array_record`): their constructors' argument checks cost more than the encoding
itself (~9 µs an ``Array``, ~4 µs a record entry, against ~1 µs) and every reply of every
round pays them. The instances are identical to the constructors' (same instance dict, same
``object_id``); tests/test_records.py fails loudly if a Flower upgrade changes that.

The same holds for what fedpoison's own ClientApp sends back each round (:func:`new_metrics`,
:func:`new_content`, :func:`reply_message`) and what its strategy sends out
(:func:`instruction_message`): the ``MetricRecord``/``RecordDict``/``Message`` constructors
check every key and value (~9 µs each, ~25 µs a reply), although the values are numbers and
records fedpoison built itself. Only such values go through here; the server still
validates every reply it receives (:mod:`fedpoison.strategies.replies`), and a mod or a user's
ClientApp builds its messages through Flower's constructors.
"""

from __future__ import annotations

import io
import math
from functools import lru_cache
from typing import TypeVar

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, Metadata, MetricRecord, RecordDict
from flwr.app.constants import DEFAULT_TTL
from flwr.supercore.date import now
from flwr.supercore.task_identity import TaskIdentity

_NPY_MAGIC = b"\x93NUMPY\x01\x00"  # format version 1.0: 2-byte little-endian header length
_NUMPY = "numpy.ndarray"  # the ``stype`` of np.save bytes (flwr's SType.NUMPY)


@lru_cache(maxsize=1024)
def _header(dtype: np.dtype, shape: tuple[int, ...]) -> tuple[str, bytes, int]:
    """``(dtype name, .npy v1.0 header np.save writes, payload bytes)`` for a C-ordered array."""
    buf = io.BytesIO()
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buf, header)
    return str(dtype), buf.getvalue(), dtype.itemsize * math.prod(shape)


@lru_cache(maxsize=1024)
def expected_npy(dtype: str, shape: tuple[int, ...]) -> tuple[np.dtype, bytes, int]:
    """What a record claiming ``dtype``/``shape`` must hold: dtype, header, payload bytes."""
    parsed = np.dtype(dtype)
    _, head, size = _header(parsed, shape)
    return parsed, head, size


def new_array(dtype: str, shape: tuple[int, ...], data: bytes) -> Array:
    """``Array(dtype=dtype, shape=shape, stype="numpy.ndarray", data=data)`` without the
    constructor's argument checks (the caller's types are right by construction)."""
    array: Array = object.__new__(Array)
    array.__dict__.update(
        {"_is_dirty": True, "dtype": dtype, "shape": shape, "stype": _NUMPY, "data": data}
    )
    return array


def new_array_record(arrays: dict[str, Array]) -> ArrayRecord:
    """The ``ArrayRecord`` that setting each of ``arrays`` in turn builds (keys in order),
    without ``__setitem__``'s key and value checks."""
    record = ArrayRecord()
    if arrays:
        record.__dict__["_data"].update(arrays)
        record.__dict__["_is_dirty"] = True
    return record


def new_metrics(values: dict[str, int | float]) -> MetricRecord:
    """``MetricRecord(values)`` for ``str`` keys and ``int``/``float`` values fedpoison computed
    itself (counts, losses), without ``__setitem__``'s key and value checks."""
    record = MetricRecord()
    if values:
        record.__dict__["_data"].update(values)
    return record


def new_content(records: dict[str, ArrayRecord | MetricRecord | ConfigRecord]) -> RecordDict:
    """``RecordDict(records)`` (keys in order) without ``__setitem__``'s checks."""
    content = RecordDict()
    content.__dict__["_data"].update(records)
    return content


def instruction_message(
    content: RecordDict, dst_node_id: int, message_type: str, group_id: str
) -> Message:
    """``Message(content, dst_node_id, message_type, group_id=group_id)`` (the default TTL),
    built as its constructor builds it, without the argument checks."""
    metadata = Metadata(
        run_id=TaskIdentity.run_id,
        message_id="",
        src_node_id=TaskIdentity.node_id,
        dst_node_id=dst_node_id,
        reply_to_message_id="",
        group_id=group_id,
        created_at=now().timestamp(),
        ttl=DEFAULT_TTL,
        message_type=message_type,
        src_task_id=TaskIdentity.task_id,
        dst_task_id=None,
    )
    return _message(metadata, content)


def reply_message(content: RecordDict, reply_to: Message) -> Message:
    """``Message(content, reply_to=reply_to)``, built as its constructor builds it (the metadata
    through ``Metadata``'s own constructor, the reply's TTL what is left of ``reply_to``'s)
    without the argument checks."""
    asked = reply_to.metadata
    current = now().timestamp()
    metadata = Metadata(
        run_id=asked.run_id,
        message_id="",
        src_node_id=asked.dst_node_id,
        dst_node_id=asked.src_node_id,
        reply_to_message_id=asked.message_id,
        group_id=asked.group_id,
        created_at=current,
        ttl=asked.created_at + asked.ttl - current,
        message_type=asked.message_type,
        src_task_id=asked.dst_task_id,
        dst_task_id=asked.src_task_id,
    )
    return _message(metadata, content)


def _message(metadata: Metadata, content: RecordDict) -> Message:
    """The ``Message`` its constructor makes of ``metadata`` and ``content``."""
    metadata.delivered_at = ""
    message: Message = object.__new__(Message)
    message.__dict__.update({"_metadata": metadata, "_content": content, "_error": None})
    return message


def encode(array: np.ndarray) -> Array:
    """``Array`` holding exactly the bytes ``np.save`` would write (Flower can read it)."""
    array = np.ascontiguousarray(array).reshape(np.shape(array))  # (keeps 0-d arrays 0-d)
    name, head, _ = _header(array.dtype, array.shape)
    return new_array(name, array.shape, head + array.tobytes())


def npy_payload(data: bytes, dtype: np.dtype, head: bytes, count: int) -> np.ndarray | None:
    """The ``count`` values of ``dtype`` after ``head`` (read-only view of ``data``) when
    ``data`` is exactly that header and those values, else ``None``."""
    if len(data) == len(head) + count * dtype.itemsize and data.startswith(head):
        return np.frombuffer(data, dtype, count, len(head))
    return None


def decode(array: Array) -> np.ndarray:
    """The NumPy array in ``array`` (read-only view of its bytes when on the fast path)."""
    try:
        dtype, head, size = expected_npy(array.dtype, tuple(array.shape))
    except (TypeError, ValueError):
        return array.numpy()
    values = npy_payload(array.data, dtype, head, size // dtype.itemsize)
    return array.numpy() if values is None else values.reshape(array.shape)


def to_record(state: dict[str, torch.Tensor]) -> ArrayRecord:
    """An ``ArrayRecord`` of a torch ``state_dict`` (keys and order kept)."""
    return new_array_record(
        {name: encode(tensor.detach().cpu().numpy()) for name, tensor in state.items()}
    )


def stacked_records(stacked: dict[str, torch.Tensor]) -> list[ArrayRecord]:
    """``[to_record({name: t[j] for name, t in stacked.items()}) for j in range(k)]`` for
    tensors stacking ``k`` clients' states along their first dimension, converted to NumPy
    once per tensor rather than once per client and tensor."""
    columns = []
    for name, tensor in stacked.items():
        whole = tensor.detach().cpu().numpy()
        dtype, head, _ = _header(whole.dtype, whole.shape[1:])
        columns.append((name, dtype, whole.shape[1:], head, whole))
    k = len(columns[0][4]) if columns else 0
    return [
        new_array_record(
            {
                name: new_array(dtype, shape, head + whole[j].tobytes())
                for name, dtype, shape, head, whole in columns
            }
        )
        for j in range(k)
    ]


def to_state_dict(record: ArrayRecord) -> dict[str, torch.Tensor]:
    """A torch ``state_dict`` of ``record``; tensors are copies (safe to train on)."""
    return {name: torch.from_numpy(decode(record[name]).copy()) for name in record}


R = TypeVar("R", ArrayRecord, MetricRecord, ConfigRecord)


def record_of(content: RecordDict, key: str, kind: type[R]) -> R:
    """``content[key]`` as the ``kind`` of record it must be; ``TypeError`` otherwise.

    (``RecordDict.array_records`` and its siblings type the lookup too, but rebuild a dict of
    every entry on each call: ~12 µs against 0.5 µs, per client and message.)
    """
    record = content[key]
    if not isinstance(record, kind):
        raise TypeError(f"{key!r} is a {type(record).__name__}, not a {kind.__name__}")
    return record
