"""Neurotoxin: a backdoor trained on the coordinates benign clients rarely change (Zhang, Panda,
Song, Yang, Mahoney, Mittal, Ramchandran, Gonzalez, ICML 2022, "Neurotoxin: Durable Backdoors in
Federated Learning"; REFERENCES D32)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from torch import nn
from torch.nn import functional as F

from fedpoison.attacks.base import DATA_ATTACKS, DataAttack
from fedpoison.attacks.pgd import NORMS, Projection
from fedpoison.attacks.shaping import ClientRound, Shaping
from fedpoison.attacks.training_attack import TrainingAttack

ESTIMATES = ("clean_grad", "global_diff")


def neurotoxin_mask(benign: torch.Tensor, keep_ratio: float) -> torch.Tensor:
    """Boolean mask of the ``⌊keep_ratio·d⌋`` coordinates of the flat ``benign`` with the
    **smallest** ``|ĝ_j|`` (the official ``topk(−|g|, ratio·d)``; ties: ``torch.topk``'s).

    REFERENCES D32's example: FLPoison's signed ranking would keep (0, 1, 1, 1, 0).

        >>> import torch
        >>> g = torch.tensor([0.5, -0.1, 0.02, -2.0, 0.3])
        >>> neurotoxin_mask(g, 0.6).int().tolist()
        [0, 1, 1, 0, 1]
    """
    if not 0.0 <= keep_ratio <= 1.0:
        raise ValueError(f"neurotoxin: keep_ratio must be in [0, 1], got {keep_ratio}")
    keep = int(keep_ratio * benign.numel())
    mask = torch.zeros(benign.numel(), dtype=torch.bool, device=benign.device)
    mask[torch.topk(-benign.abs().reshape(-1), keep).indices] = True
    return mask.view_as(benign)


def clean_gradient(client: ClientRound, batch_size: int = 256) -> list[torch.Tensor]:
    """The gradient of the mean cross-entropy of the received global model on the client's
    clean partition (model in eval mode; ``.grad`` fields untouched), per parameter."""
    params = client.parameters()
    model = client.model
    assert model is not None  # parameters() checked it
    device = params[0].device
    was_training = model.training
    model.eval()
    grads = [torch.zeros_like(p) for p in params]
    for start in range(0, len(client.y), batch_size):
        xb = client.x[start : start + batch_size].to(device)
        yb = client.y[start : start + batch_size].to(device)
        loss = F.cross_entropy(model(xb), yb, reduction="sum") / len(client.y)
        for total, g in zip(grads, torch.autograd.grad(loss, params), strict=True):
            total.add_(g)
    model.train(was_training)
    return grads


class GradientMask(Shaping):
    """``grad ← grad ⊙ M`` after every backward pass (then, optionally, PGD)."""

    def __init__(self, masks: list[torch.Tensor], projection: Projection | None) -> None:
        self.masks, self.projection = masks, projection

    def after_backward(self, params: Sequence[nn.Parameter]) -> None:
        for p, m in zip(params, self.masks, strict=True):
            if p.grad is not None:
                p.grad.mul_(m)

    def after_step(self, params: Sequence[nn.Parameter], last: bool) -> None:
        if self.projection is not None:
            self.projection.after_step(params, last)

    def finish(self, params: Sequence[nn.Parameter]) -> None:
        if self.projection is not None:
            self.projection.finish(params)


@DATA_ATTACKS.register("neurotoxin")
class Neurotoxin(TrainingAttack):
    """Backdoor training restricted to the coordinates where the benign gradient is smallest.

    Once per round, before malicious training (D32 rule):

    1. estimate the benign gradient ĝ (``benign_estimate``):

       - ``"clean_grad"`` (default, the official code's ``grad_mask_cv``): the gradient of the
         received global model on clean data. The official code sums the losses of 30 benign
         participants' data; a client here has only its own clean partition, so ĝ is the
         mean-loss gradient on that partition;
       - ``"global_diff"``: the previous round's global change ``w_t − w_{t−1}`` (issue 20's
         reading of the paper's "observed benign gradient"; whether the paper means it is
         unverified). ``w_{t−1}`` is the global model this node received the last time before
         (the previous round under full participation); in a node's first attacking round
         there is none and ``clean_grad`` is used;

    2. keep the ``keep_ratio`` fraction of coordinates with the **smallest** ``|ĝ_j|``
       (:func:`neurotoxin_mask`; ``mask_ratio = 1 − keep_ratio`` is masked), ranked over the
       concatenated parameters (the official ``aggregate_all_layer=1`` runs) or, with
       ``per_layer``, within each parameter tensor;
    3. train on ``poison``'s data with ``grad ← grad ⊙ M`` after every backward pass, then
       the optimizer step (momentum and weight decay act on the masked gradient, so with
       weight decay masked coordinates can still move: the official code does the same);
    4. optionally project ``‖w − w_g‖ ≤ eps`` as :class:`~fedpoison.attacks.pgd.PGD` does
       (the official CIFAR run's ``s_norm`` bound), every ``project_every`` steps and last.

    Args:
        poison: the data attack whose poisoned data is trained on (default ``Backdoor()``).
        keep_ratio: fraction of coordinates kept (official CIFAR/Reddit runs 0.95; BackFed
            0.99; FLPoison keeps 0.1 and ranks the signed gradient, a bug this avoids).
        benign_estimate: ``clean_grad`` or ``global_diff``.
        per_layer: rank within each parameter tensor instead of over all of them.
        eps: ``None`` (no projection) or the PGD radius ε > 0.
        project_every: PGD period in optimizer steps (with ``eps``).
        norm: PGD norm, ``l2`` or ``linf`` (with ``eps``).
    """

    paper: ClassVar[str] = "Zhang et al. 2022 (ICML), Neurotoxin"

    def __init__(
        self,
        poison: DataAttack | None = None,
        keep_ratio: float = 0.95,
        benign_estimate: str = "clean_grad",
        per_layer: bool = False,
        eps: float | None = None,
        project_every: int = 10,
        norm: str = "l2",
    ) -> None:
        super().__init__(poison)
        if not 0.0 <= keep_ratio <= 1.0:
            raise ValueError(f"neurotoxin: keep_ratio must be in [0, 1], got {keep_ratio}")
        if benign_estimate not in ESTIMATES:
            raise ValueError(
                f"neurotoxin: benign_estimate must be one of {', '.join(ESTIMATES)}, "
                f"got {benign_estimate!r}"
            )
        if eps is not None and not eps > 0:
            raise ValueError(f"neurotoxin: eps must be > 0 or null, got {eps}")
        if project_every < 1 or norm not in NORMS:
            raise ValueError(
                f"neurotoxin: need project_every ≥ 1 and norm in {NORMS}, got "
                f"{project_every}, {norm!r}"
            )
        self.keep_ratio, self.benign_estimate = float(keep_ratio), benign_estimate
        self.per_layer = bool(per_layer)
        self.eps = None if eps is None else float(eps)
        self.project_every, self.norm = int(project_every), norm

    def needs_previous_global(self) -> bool:
        return self.benign_estimate == "global_diff"

    def benign(self, client: ClientRound) -> list[torch.Tensor]:
        """ĝ per parameter tensor (step 1)."""
        if self.benign_estimate == "global_diff" and client.previous_global is not None:
            return [
                p.detach() - q.to(p.device)
                for p, q in zip(client.parameters(), client.previous_global, strict=True)
            ]
        return clean_gradient(client)

    def masks(self, benign: list[torch.Tensor]) -> list[torch.Tensor]:
        """``M`` per parameter tensor, as the parameters' dtype (step 2)."""
        if self.per_layer:
            return [neurotoxin_mask(g, self.keep_ratio).to(g.dtype) for g in benign]
        whole = neurotoxin_mask(torch.cat([g.reshape(-1) for g in benign]), self.keep_ratio)
        return [
            m.view_as(g).to(g.dtype)
            for m, g in zip(whole.split([g.numel() for g in benign]), benign, strict=True)
        ]

    def shaping(self, client: ClientRound) -> Shaping:
        params = client.parameters()
        projection = (
            None
            if self.eps is None
            else Projection(params, self.eps, self.project_every, self.norm, None)
        )
        return GradientMask(self.masks(self.benign(client)), projection)
