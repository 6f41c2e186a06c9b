"""Honest worker momentum across rounds (REFERENCES D26): the recursion on a client's update.

Round ``t`` of client ``i`` with update ``Δ_i = w_trained − w_global`` (the pseudo-gradient of
its local steps):

    m_i ← β·m_i + (1 − δ)·Δ_i,    m_i = 0 before the client's first round,

and the client sends ``w_global + m_i``, so the server's row is the momentum ``m_i`` (within
float32 round-off) and every rule and attack sees momentum vectors as the honest rows, as in
ByzFL's benchmark (``attack_input = honest momentum list``) and Karimireddy et al.'s code.

The dampening ``δ`` picks the convention: ``δ = β`` (the default) is the EMA of ByzFL, Allouah
et al. (2023) and Karimireddy et al.'s paper notation (constant Δ = 1, β = 0.9 gives
0.1, 0.19, 0.271, …); ``δ = 0`` is heavy-ball, as Karimireddy et al.'s official code and
PyTorch SGD (1, 1.9, 2.71, …: the EMA × 1/(1−β) in steady state, so fixed thresholds such as
centered clipping's τ or a clip norm change meaning with δ); other ``δ`` is ByzantineMomentum's
dampened form. A client not sampled in a round keeps its buffer unchanged. Only floating-point
arrays carry momentum; integer buffers are sent as trained.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class WorkerMomentum:
    """The worker momentum recursion ``m ← β·m + (1 − δ)·Δ``.

    Attributes:
        beta: β in [0, 1); 0 = no momentum (the update is sent as trained, bit for bit).
        dampening: δ in [0, 1); ``None`` = β (EMA); 0 = heavy-ball.

    Example:

        >>> import torch
        >>> ema = WorkerMomentum(0.9)
        >>> m = ema.step(None, torch.ones(1))
        >>> [round(float(m := ema.step(m, torch.ones(1))), 3) for _ in range(2)]
        [0.19, 0.271]
    """

    beta: float = 0.0
    dampening: float | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.beta < 1.0:
            raise ValueError(f"worker momentum β must be in [0, 1), got {self.beta}")
        if self.dampening is not None and not 0.0 <= self.dampening < 1.0:
            raise ValueError(f"worker momentum dampening δ must be in [0, 1), got {self.dampening}")

    @property
    def active(self) -> bool:
        """Whether clients keep a buffer (β > 0)."""
        return self.beta > 0.0

    @property
    def scale(self) -> float:
        """``1 − δ``, the weight of the new update."""
        return 1.0 - (self.beta if self.dampening is None else self.dampening)

    def step(self, buffer: torch.Tensor | None, update: torch.Tensor) -> torch.Tensor:
        """The new buffer from ``buffer`` (``None`` = zero, the first round) and ``update``;
        neither input is modified."""
        if buffer is None:
            return update * self.scale
        return torch.add(buffer * self.beta, update, alpha=self.scale)

    def apply(
        self,
        trained: Mapping[str, torch.Tensor],
        global_state: Sequence[torch.Tensor],
        buffers: Mapping[str, torch.Tensor],
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        """``(weights to send, new buffers)`` for one client's round.

        Args:
            trained: the client's trained state dict (any device).
            global_state: the received global model's tensors, in ``trained``'s order (CPU).
            buffers: the client's buffers by array name (empty before its first round).

        Returns:
            ``w_global + m`` per floating-point array (integer arrays as trained), on the CPU,
            and the new ``m`` per floating-point array.
        """
        sent: dict[str, torch.Tensor] = {}
        new: dict[str, torch.Tensor] = {}
        for (name, weights), start in zip(trained.items(), global_state, strict=True):
            weights = weights.detach().cpu()
            if not weights.is_floating_point():
                sent[name] = weights
                continue
            new[name] = self.step(buffers.get(name), weights - start)
            sent[name] = start + new[name]
        return sent, new
