"""Local SGD and evaluation, shared by the ClientApp and the server (FLTrust root set).

Loss convention: PyTorch's **mean** cross-entropy over the batch. The MXNet papers (FLTrust,
Fang, FoundationFL) back-propagate the **sum** of batch losses, so their learning rates map to
ours as ``lr_ours = lr_paper × batch_size`` (REFERENCES.md, Conventions 1).
"""

from __future__ import annotations

from dataclasses import dataclass

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


def batches(n: int, cfg: LocalTraining, generator: torch.Generator) -> list[torch.Tensor]:
    """Index batches: ``local_epochs`` shuffled epochs, or exactly ``local_steps`` batches."""
    if cfg.local_steps is None:
        return [
            b
            for _ in range(cfg.local_epochs)
            for b in torch.randperm(n, generator=generator).split(cfg.batch_size)
        ]
    drawn: list[torch.Tensor] = []
    while len(drawn) < cfg.local_steps:
        drawn.extend(torch.randperm(n, generator=generator).split(cfg.batch_size))
    return drawn[: cfg.local_steps]


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
            if buffers[i] is None:
                buffers[i] = d_p.clone()
            else:
                buffers[i].mul_(cfg.momentum).add_(d_p)
            d_p = buffers[i]
        p.add_(d_p, alpha=-cfg.lr)


def local_train(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: LocalTraining,
    generator: torch.Generator,
    device: torch.device,
) -> float:
    """Train ``model`` in place on ``(x, y)``; returns the mean training loss over steps.

    Momentum buffers start at zero every round (clients are stateless across rounds).
    """
    if len(y) == 0:
        raise ValueError("local_train: the client holds no examples")
    if not model.training:
        model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    buffers: list[torch.Tensor | None] = [None] * len(params)
    total, steps = 0.0, 0
    for idx in batches(len(y), cfg, generator):
        xb, yb = x[idx].to(device), y[idx].to(device)
        for p in params:
            p.grad = None
        loss = F.cross_entropy(model(xb), yb)
        loss.backward()
        sgd_step(params, buffers, cfg)
        total += loss.item()
        steps += 1
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
