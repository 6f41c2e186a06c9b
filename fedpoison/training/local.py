"""Local SGD and evaluation, shared by the ClientApp and the server (FLTrust root set).

Loss convention: PyTorch's **mean** cross-entropy over the batch. The MXNet papers (FLTrust,
Fang, FoundationFL) back-propagate the **sum** of batch losses, so their learning rates map to
ours as ``lr_ours = lr_paper × batch_size`` (docs/conventions.md §C3).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class LocalTraining:
    """One client's local procedure.

    Attributes:
        lr, momentum, weight_decay: torch SGD hyper-parameters.
        batch_size: minibatch size (the last batch of an epoch may be smaller).
        local_epochs: passes over the local data (used when ``local_steps`` is None).
        local_steps: exact number of SGD steps (FedSGD-like settings use 1).
    """

    lr: float = 0.05
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 32
    local_epochs: int = 1
    local_steps: int | None = None

    def to_config(self) -> dict[str, Any]:
        """The procedure as the flat, dash-keyed config a Flower ``ConfigRecord`` holds
        (``local-steps`` 0 = train ``local-epochs`` epochs)."""
        return {
            "lr": self.lr,
            "momentum": self.momentum,
            "weight-decay": self.weight_decay,
            "batch-size": self.batch_size,
            "local-epochs": self.local_epochs,
            "local-steps": self.local_steps or 0,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> LocalTraining:
        """Inverse of :meth:`to_config`, read from a received round config."""
        steps = int(config["local-steps"])
        return cls(
            lr=float(config["lr"]),
            momentum=float(config["momentum"]),
            weight_decay=float(config["weight-decay"]),
            batch_size=int(config["batch-size"]),
            local_epochs=int(config["local-epochs"]),
            local_steps=steps if steps > 0 else None,
        )


def batches(n: int, cfg: LocalTraining, generator: torch.Generator) -> list[torch.Tensor]:
    """Index batches: ``local_epochs`` shuffled epochs, or exactly ``local_steps`` batches."""
    if cfg.local_steps is None:
        return [b for _ in range(cfg.local_epochs) for b in _epoch(n, cfg.batch_size, generator)]
    drawn: list[torch.Tensor] = []
    while len(drawn) < cfg.local_steps:
        drawn.extend(_epoch(n, cfg.batch_size, generator))
    return drawn[: cfg.local_steps]


def _epoch(n: int, batch_size: int, generator: torch.Generator) -> Sequence[torch.Tensor]:
    """One shuffled epoch, ``randperm(n).split(batch_size)``; an epoch that fits in one batch
    is the permutation itself (the same indices, without ``split``'s ~3 µs a client)."""
    order = torch.randperm(n, generator=generator)
    return (order,) if n <= batch_size else order.split(batch_size)


@torch.no_grad()
def sgd_step(
    params: list[nn.Parameter], buffers: list[torch.Tensor | None], cfg: LocalTraining
) -> None:
    """One step of ``torch.optim.SGD`` (dampening 0, no Nesterov), in place.

    Written out because constructing ``torch.optim`` optimisers imports TorchDynamo (~2.5 s
    on first use) and costs ~50 µs per client per round; a test pins equality with it.
    """
    for i, p in enumerate(params):
        if p.grad is None:
            continue
        d_p = p.grad if cfg.weight_decay == 0 else p.grad.add(p, alpha=cfg.weight_decay)
        if cfg.momentum != 0:
            buffer = buffers[i]
            if buffer is None:
                buffer = buffers[i] = d_p.clone()
            else:
                buffer.mul_(cfg.momentum).add_(d_p)
            d_p = buffer
        p.add_(d_p, alpha=-cfg.lr)


class TrainingHook(Protocol):
    """Points where a malicious client shapes its local training
    (:class:`fedpoison.attacks.shaping.Shaping` is one); each works in place on ``params``."""

    def after_backward(self, params: Sequence[nn.Parameter]) -> None: ...

    def after_step(self, params: Sequence[nn.Parameter], last: bool) -> None: ...

    def finish(self, params: Sequence[nn.Parameter]) -> None: ...


def local_train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: LocalTraining,
    generator: torch.Generator,
    device: torch.device,
    hook: TrainingHook | None = None,
) -> float:
    """Train ``model`` in place on ``(x, y)``; returns the mean training loss over steps.

    Momentum buffers start at zero every round (clients are stateless across rounds).
    ``hook`` (a malicious client's shaping) is called after every backward pass, after every
    step and once at the end, under ``torch.no_grad()``; without it the loop is plain SGD.
    """
    if len(y) == 0:
        raise ValueError("local_train: the client holds no examples")
    if not model.training:
        model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    buffers: list[torch.Tensor | None] = [None] * len(params)
    total, steps = 0.0, 0
    order = batches(len(y), cfg, generator)
    for idx in order:
        xb, yb = x[idx].to(device), y[idx].to(device)
        for p in params:
            p.grad = None
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        if hook is not None:
            with torch.no_grad():
                hook.after_backward(params)
        sgd_step(params, buffers, cfg)
        total += loss.item()
        steps += 1
        if hook is not None:
            with torch.no_grad():
                hook.after_step(params, steps == len(order))
    if hook is not None:
        with torch.no_grad():
            hook.finish(params)
    return total / max(steps, 1)


@torch.no_grad()
def evaluate(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, batch_size: int = 1024
) -> tuple[float, float]:
    """``(mean loss, accuracy)`` of ``model`` on ``(x, y)``; ``(nan, nan)`` when empty."""
    if len(y) == 0:
        return float("nan"), float("nan")
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        xb, yb = x[start : start + batch_size].to(device), y[start : start + batch_size].to(device)
        logits = model(xb)
        loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(dim=1) == yb).sum())
    return loss_sum / len(y), correct / len(y)
