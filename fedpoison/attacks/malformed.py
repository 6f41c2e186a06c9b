"""``attack=malformed``: hostile clients that send broken replies instead of poisoned ones.

Each round every active malicious client picks one fault (uniformly, from its own seeded
stream) among ``faults``; the server must record every one as a rejected reply and keep the
global model finite. No paper: this is a plumbing test users run against their defenses.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from typing import ClassVar

import numpy as np
import torch
from flwr.app import Array, ArrayRecord, MetricRecord, RecordDict

from fedpoison.attacks.base import REPLY_ATTACKS, ReplyAttack
from fedpoison.protocol import NUM_EXAMPLES
from fedpoison.records import record_of


def _arrays(content: RecordDict) -> dict[str, np.ndarray]:
    record = record_of(content, "arrays", ArrayRecord)
    return {k: np.array(record[k].numpy()) for k in record}


def _with_arrays(content: RecordDict, arrays: dict[str, np.ndarray]) -> RecordDict:
    return RecordDict({**content, "arrays": ArrayRecord({k: Array(v) for k, v in arrays.items()})})


def _with_count(content: RecordDict, value: float) -> RecordDict:
    metrics = dict(record_of(content, "metrics", MetricRecord))
    metrics[NUM_EXAMPLES] = value
    return RecordDict({**content, "metrics": MetricRecord(metrics)})


def _fill(value: float) -> Callable[[RecordDict], RecordDict]:
    def fault(content: RecordDict) -> RecordDict:
        arrays = _arrays(content)
        first = next(iter(arrays))
        arrays[first] = np.full_like(arrays[first], value)
        return _with_arrays(content, arrays)

    return fault


def _wrong_shape(content: RecordDict) -> RecordDict:
    arrays = _arrays(content)
    first = next(iter(arrays))
    arrays[first] = np.zeros(arrays[first].size + 1, arrays[first].dtype)
    return _with_arrays(content, arrays)


def _wrong_dtype(content: RecordDict) -> RecordDict:
    arrays = _arrays(content)
    first = next(iter(arrays))
    arrays[first] = arrays[first].astype(np.int64)
    return _with_arrays(content, arrays)


def _missing_array(content: RecordDict) -> RecordDict:
    arrays = _arrays(content)
    arrays.pop(next(iter(arrays)))
    return _with_arrays(content, arrays)


def _extra_array(content: RecordDict) -> RecordDict:
    return _with_arrays(content, {**_arrays(content), "extra": np.zeros(3, np.float32)})


def _no_metrics(content: RecordDict) -> RecordDict:
    return RecordDict({"arrays": content["arrays"]})


def _crash(content: RecordDict) -> RecordDict:
    raise RuntimeError("malformed attack: simulated client crash")


FAULTS: dict[str, Callable[[RecordDict], RecordDict]] = {
    "nan": _fill(float("nan")),
    "inf": _fill(float("inf")),
    "huge": _fill(1e38),
    "wrong_shape": _wrong_shape,
    "wrong_dtype": _wrong_dtype,
    "missing_array": _missing_array,
    "extra_array": _extra_array,
    "negative_examples": lambda c: _with_count(c, -5),
    "zero_examples": lambda c: _with_count(c, 0),
    "fractional_examples": lambda c: _with_count(c, 2.5),
    "huge_examples": lambda c: _with_count(c, 10**12),
    "no_metrics": _no_metrics,
    "crash": _crash,
}


PROCESS_FAULTS = ("hang", "exit")
"""Faults of the client process itself, only when listed explicitly: ``hang`` sleeps
``hang_seconds`` (for ``engine.client_timeout``), ``exit`` kills the process (``engine=ray``
replaces the actor; on ``engine=inline`` it would end the simulation itself)."""


@REPLY_ATTACKS.register("malformed")
class Malformed(ReplyAttack):
    """Sends one of ``faults`` per round (every reply fault of :data:`FAULTS` by default)."""

    paper: ClassVar[str] = "— (fault injection; fedpoison)"

    def __init__(self, faults: Sequence[str] | None = None, hang_seconds: float = 30.0) -> None:
        chosen = list(faults) if faults else list(FAULTS)
        unknown = [f for f in chosen if f not in FAULTS and f not in PROCESS_FAULTS]
        if unknown:
            known = ", ".join([*FAULTS, *PROCESS_FAULTS])
            raise ValueError(f"attack.reply.faults: unknown {unknown}; known: {known}")
        self.faults = chosen
        self.hang_seconds = hang_seconds

    def corrupt(self, content: RecordDict, generator: torch.Generator) -> RecordDict:
        fault = self.faults[int(torch.randint(len(self.faults), (1,), generator=generator))]
        if fault == "hang":
            time.sleep(self.hang_seconds)
        elif fault == "exit":
            os._exit(1)
        return FAULTS[fault](content) if fault in FAULTS else content
