"""The network the update rows are deltas of, evaluated at any flat parameter vector.

A few rules look inside the model rather than only at the ``(n, d)`` matrix: DeepSight reads
the output layer's rows and runs the clients' models on random inputs, CRFL certifies the
final model by parameter smoothing. :class:`FlatModel` gives them that without a training
loop: the module (its architecture) and the input shape; the flat vector ``w`` ``(d,)`` is
split in the module's ``state_dict`` order, which is the layout of the update matrix
(docs/conventions.md §C1: the global record is the model's ``state_dict``), buffers included.
The strategy passes one as ``RoundContext.model`` to rules that declare ``needs_model``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.func import functional_call


@dataclass(frozen=True)
class FlatModel:
    """``module`` as a function of its flattened ``state_dict``.

    Attributes:
        module: the architecture (its own weights are never used nor modified).
        input_shape: one example's shape, e.g. ``(1, 28, 28)``.
    """

    module: nn.Module
    input_shape: tuple[int, ...]
    names: tuple[str, ...] = field(init=False)
    shapes: tuple[tuple[int, ...], ...] = field(init=False)

    def __post_init__(self) -> None:
        state = self.module.state_dict()
        object.__setattr__(self, "names", tuple(state))
        object.__setattr__(self, "shapes", tuple(tuple(t.shape) for t in state.values()))

    @property
    def dim(self) -> int:
        """``d``, the length of the flat vector."""
        return sum(math.prod(s) for s in self.shapes)

    def vector(self) -> torch.Tensor:
        """The module's own ``state_dict`` as one float32 vector ``(d,)``."""
        entries = self.module.state_dict().values()
        return torch.cat([t.detach().reshape(-1).to(torch.float32) for t in entries])

    def offsets(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of each ``state_dict`` entry in the flat vector."""
        out, start = [], 0
        for shape in self.shapes:
            out.append((start, start + math.prod(shape)))
            start += math.prod(shape)
        return out

    def output_layer(self) -> tuple[slice, tuple[int, int], slice]:
        """``(weight slice, (P, p), bias slice)`` of the last 2-D entry that is directly
        followed by a 1-D entry of its ``P`` rows: the final linear layer's weight and bias.

        Raises ``ValueError`` when the model has no such pair."""
        spans = self.offsets()
        for i in range(len(self.shapes) - 2, -1, -1):
            weight, bias = self.shapes[i], self.shapes[i + 1]
            if len(weight) == 2 and bias == (weight[0],):
                rows, cols = weight
                return slice(*spans[i]), (rows, cols), slice(*spans[i + 1])
        raise ValueError(f"FlatModel: no linear output layer (weight, bias) in {self.names}")

    def logits(self, flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The module's output on ``x`` with its ``state_dict`` replaced by ``flat`` ``(d,)``
        (eval mode, no gradient, in ``flat``'s dtype and device)."""
        if flat.shape != (self.dim,):
            raise ValueError(f"FlatModel: got a vector of shape {tuple(flat.shape)}, d={self.dim}")
        state = {}
        for name, shape, (start, stop) in zip(self.names, self.shapes, self.offsets(), strict=True):
            state[name] = flat[start:stop].reshape(shape)
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.no_grad():
                return functional_call(self.module, state, (x.to(flat),), strict=True)
        finally:
            self.module.train(was_training)


def linear_model(d: int, max_classes: int = 10) -> FlatModel:
    """A linear classifier with exactly ``d`` parameters: ``P`` classes and ``d/P − 1``
    inputs, ``P`` the largest divisor of ``d`` up to ``max_classes`` leaving at least one
    input (``P = 1`` otherwise). Used where a rule needs a model for an arbitrary ``d``."""
    classes = max([p for p in range(1, max_classes + 1) if d % p == 0 and d // p >= 2] or [1])
    inputs = d // classes - 1
    with warnings.catch_warnings():  # d = 1: a zero-input layer, whose init is a no-op
        warnings.simplefilter("ignore", UserWarning)
        layer = nn.Linear(inputs, classes, device="meta")
    return FlatModel(layer, (inputs,))
