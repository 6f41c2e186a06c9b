"""What the server and every ClientApp process agree on: data, partitions, model builder.

A :class:`FederationSpec` is small and picklable (plain config dicts); :func:`load_federation`
materialises it once per process and caches it, so Ray workers load data themselves and no
dataset is ever shipped inside a message.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from hydra.utils import instantiate
from torch import nn

from fedpoison.data.base import ImageDataset
from fedpoison.data.partition import assign
from fedpoison.models.registry import build_model
from fedpoison.seeding import PARTITION, numpy_rng


@dataclass(frozen=True)
class FederationSpec:
    """Resolved ``dataset``/``partition``/``model`` configs (``_target_`` dicts) and sizes."""

    dataset: dict[str, Any]
    partition: dict[str, Any]
    model: dict[str, Any]
    num_clients: int
    seed: int

    def key(self) -> str:
        """A stable cache key for this spec."""
        return json.dumps(
            [self.dataset, self.partition, self.model, self.num_clients, self.seed], sort_keys=True
        )


@dataclass
class Federation:
    """The materialised federation: shared dataset, per-client index arrays, model builder."""

    spec: FederationSpec
    data: ImageDataset
    partitions: list[np.ndarray]
    _builder: Any = field(repr=False)

    def new_model(self) -> nn.Module:
        """A freshly initialised model (identical weights for the same seed everywhere)."""
        return build_model(
            self._builder, self.data.input_shape, self.data.num_classes, self.spec.seed
        )

    def client_data(self, partition_id: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Client ``partition_id``'s training examples (copies of its rows of the shared
        tensors; ``index_select``: the rows ``x[idx]`` gives, ~3 µs a client sooner)."""
        idx = torch.from_numpy(self.partitions[partition_id])
        return self.data.x_train.index_select(0, idx), self.data.y_train.index_select(0, idx)

    def clients_data(
        self, partition_ids: Sequence[int]
    ) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        """``(x, y, sizes)``: the clients' :meth:`client_data` concatenated in the given order
        (the same rows, gathered by one ``index_select``) and each one's number of examples;
        at least one client."""
        parts = [self.partitions[pid] for pid in partition_ids]
        idx = torch.from_numpy(np.concatenate(parts))
        x, y = self.data.x_train.index_select(0, idx), self.data.y_train.index_select(0, idx)
        return x, y, [len(part) for part in parts]


_CACHE: dict[str, Federation] = {}


def load_federation(spec: FederationSpec) -> Federation:
    """Materialise ``spec`` (cached per process)."""
    key = spec.key()
    if key not in _CACHE:
        data: ImageDataset = instantiate(spec.dataset)
        partitioner = instantiate(spec.partition)
        parts = assign(partitioner, data, spec.num_clients, numpy_rng(spec.seed, PARTITION))
        _CACHE[key] = Federation(spec, data, parts, instantiate(spec.model))
    return _CACHE[key]
