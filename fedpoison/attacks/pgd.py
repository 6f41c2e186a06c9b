"""Norm-bounded backdoor training by projected gradient descent, optionally with model
replacement (Sun, Kairouz, Suresh, McMahan 2019, arXiv:1911.07963; Wang et al., NeurIPS 2020,
"Attack of the Tails"; REFERENCES D33)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn

from fedpoison.attacks.base import DATA_ATTACKS, DataAttack
from fedpoison.attacks.shaping import ClientRound, Shaping, assign, flat
from fedpoison.attacks.training_attack import TrainingAttack

NORMS = ("l2", "linf")


def project(delta: torch.Tensor, eps: float, norm: str = "l2") -> torch.Tensor:
    """``delta`` projected onto the ball ``‖δ‖ ≤ ε``: ``l2`` → ``δ·min(1, ε/‖δ‖₂)`` (the
    identity inside the ball), ``linf`` → ``clamp(δ, −ε, ε)`` coordinate-wise. A new tensor.

        >>> import torch
        >>> project(torch.tensor([3.0, 4.0]), 1.0).tolist()
        [0.6000000238418579, 0.800000011920929]
        >>> project(torch.tensor([0.3, -2.0]), 0.5, "linf").tolist()
        [0.30000001192092896, -0.5]
    """
    if norm == "linf":
        return delta.clamp(-eps, eps)
    size = torch.linalg.vector_norm(delta)
    return delta * (eps / size) if size > eps else delta.clone()


class Projection(Shaping):
    """PGD (D33, the official code's order): after every ``every``-th optimizer step and
    after the last one, ``w ← w_g + Π_ε(w − w_g)`` over the concatenated trainable
    parameters; at the end, with ``scale``, ``w ← w_g + scale·(w − w_g)`` (project during
    training, then boost: the boosted update's norm is ``scale·ε``, not ``ε``)."""

    def __init__(
        self, start: Sequence[torch.Tensor], eps: float, every: int, norm: str, scale: float | None
    ) -> None:
        self.start = flat(start)
        self.eps, self.every, self.norm, self.scale = eps, every, norm, scale
        self.steps = 0

    def after_step(self, params: Sequence[nn.Parameter], last: bool) -> None:
        self.steps += 1
        if last or self.steps % self.every == 0:
            assign(params, self.start + project(flat(params) - self.start, self.eps, self.norm))

    def finish(self, params: Sequence[nn.Parameter]) -> None:
        if self.scale is not None:
            assign(params, self.start + self.scale * (flat(params) - self.start))


@DATA_ATTACKS.register("pgd")
class PGD(TrainingAttack):
    """Train on backdoored data keeping ``‖w − w_g‖ ≤ ε``; optionally boost the result.

    The malicious client trains on ``poison``'s data (default the BadNets ``backdoor``) with
    the round's local procedure; every ``project_every`` optimizer steps, and after the last
    one, its trainable parameters are projected back onto the ball of radius ``eps`` around
    the received global model (``norm="l2"``, the paper's and the official code's main
    branch; ``"linf"``: the code's coordinate-wise clamp). With the last-step projection the
    sent update satisfies ``‖Δ‖ ≤ ε`` (over the trainable parameters; buffers such as
    BatchNorm statistics are not projected).

    Model replacement: ``scale`` multiplies the projected update after training. The
    official code uses the inverse of the attacker's FedAvg weight (round total / own
    examples), which a client does not know; here it is a fixed factor (e.g. the number of
    sampled clients when η = 1). The code does not shrink ε by the factor, nor does this.
    Sun et al.'s norm-bounded attacker is ``scale=None``.

    Args:
        poison: the data attack whose poisoned data is trained on (default ``Backdoor()``).
        eps: ε > 0, the radius (official CIFAR command: 2).
        project_every: project after every k-th optimizer step (official: 10 batches).
        norm: ``l2`` or ``linf``.
        scale: ``None`` (no boosting) or the factor γ > 0 of ``Δ ← γ·Δ``.
    """

    paper: ClassVar[str] = "Sun et al. 2019; Wang et al. 2020 (NeurIPS), PGD with replacement"

    def __init__(
        self,
        poison: DataAttack | None = None,
        eps: float = 2.0,
        project_every: int = 10,
        norm: str = "l2",
        scale: float | None = None,
    ) -> None:
        super().__init__(poison)
        if not eps > 0:
            raise ValueError(f"pgd: eps must be > 0, got {eps}")
        if project_every < 1:
            raise ValueError(f"pgd: project_every must be ≥ 1, got {project_every}")
        if norm not in NORMS:
            raise ValueError(f"pgd: norm must be one of {', '.join(NORMS)}, got {norm!r}")
        if scale is not None and not scale > 0:
            raise ValueError(f"pgd: scale must be > 0 or null, got {scale}")
        self.eps, self.project_every, self.norm = float(eps), int(project_every), norm
        self.scale = None if scale is None else float(scale)

    def shaping(self, client: ClientRound) -> Shaping:
        return Projection(client.parameters(), self.eps, self.project_every, self.norm, self.scale)
