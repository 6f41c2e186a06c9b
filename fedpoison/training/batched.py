"""Many clients' local training as one batched functional call (``torch.func``).

:func:`train_clients` gives each client what :func:`~fedpoison.training.local.local_train`
gives it — the same batches (drawn by :func:`~fedpoison.training.local.batches` from the
client's own generator), the same mean cross-entropy per step, the same SGD step with momentum
and weight decay (:func:`~fedpoison.training.local.sgd_step`) — but computes all clients'
gradients of a step in one ``vmap(grad(...))`` over stacked copies of the parameters.

Shapes are made equal by padding: a client's batch shorter than the step's longest is padded
with its own first rows, masked out of the loss (the mean is over the real rows), and a client
with fewer steps than the others is masked out of the later steps' update (its parameters and
momentum stay exactly as they are). The results equal the sequential loop's within float32
round-off (the batched matrix products sum in another order). Models must be deterministic
in training mode: no dropout, no batch statistics (:func:`batchable` says why not).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad_and_value, vmap
from torch.nn.utils.rnn import pad_sequence

from fedpoison.training.local import LocalTraining, batches

_RANDOM_OR_BATCH_DEPENDENT = (
    nn.modules.dropout._DropoutNd,
    nn.modules.batchnorm._NormBase,
)


def batchable(model: nn.Module) -> str | None:
    """Why ``model`` cannot be trained batched (``None`` when it can): a module whose training
    -mode output depends on randomness or on the other rows of the batch."""
    for name, module in model.named_modules():
        if isinstance(module, _RANDOM_OR_BATCH_DEPENDENT):
            return f"its {type(module).__name__} layer {name or '(root)'} is not row-independent"
    return None


def _step_batch(
    plans: Sequence[list[torch.Tensor]], offsets: torch.Tensor, step: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(rows (k, B) into the concatenated data, row mask (k, B), active (k,))`` for one
    step; a short batch is padded with its own first row, a client without this step with
    its own first example (both masked out). ``offsets`` is ``(k, 1)``: each client's first
    row in the concatenated data, added once to the padded local indices."""
    empty = torch.zeros(0, dtype=torch.long)
    local = pad_sequence(
        [p[step] if step < len(p) else empty for p in plans], batch_first=True, padding_value=-1
    )
    mask = local >= 0
    rows = torch.where(mask, local, local[:, :1].clamp(min=0)) + offsets
    return rows, mask, mask[:, 0]


def train_clients(
    model: nn.Module,
    data: Sequence[tuple[torch.Tensor, torch.Tensor]],
    cfg: LocalTraining,
    generators: Sequence[torch.Generator],
    device: torch.device,
) -> tuple[list[dict[str, torch.Tensor]], list[float]]:
    """Train one copy of ``model`` (holding the global weights) per client of ``data``.

    Returns each client's trained state dict (parameters trained, buffers as in ``model``)
    and its mean training loss over its steps, as :func:`local_train` would. ``model`` is not
    modified.
    """
    x = torch.cat([x for x, _ in data])
    y = torch.cat([y for _, y in data])
    stacked, losses = train_stacked(model, x, y, [len(y) for _, y in data], cfg, generators, device)
    return unstack(stacked), losses


def unstack(stacked: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
    """Per client (the first dimension), its state dict of views into ``stacked``."""
    own = {n: t.unbind(0) for n, t in stacked.items()}  # one call per tensor, not per client
    k = len(next(iter(stacked.values()))) if stacked else 0
    return [{n: own[n][j] for n in own} for j in range(k)]


def train_stacked(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    sizes: Sequence[int],
    cfg: LocalTraining,
    generators: Sequence[torch.Generator],
    device: torch.device,
) -> tuple[dict[str, torch.Tensor], list[float]]:
    """:func:`train_clients` on the clients' examples concatenated (``x``, ``y``: client
    ``j``'s ``sizes[j]`` rows after the ``sizes[:j]`` before it), with the states stacked:
    ``{name: (k, *shape)}`` in the model's ``state_dict`` order (buffers expanded, not
    copied), client ``j`` at index ``j``."""
    if any(n <= 0 for n in sizes):
        raise ValueError("train_clients: a client holds no examples")
    if not len(x) == len(y) == sum(sizes):
        raise ValueError(f"train_clients: {len(x)} inputs, {len(y)} labels, sizes {sum(sizes)}")
    reason = batchable(model)
    if reason is not None:
        raise ValueError(f"cannot train {type(model).__name__} batched: {reason}")
    k = len(sizes)
    trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
    params = {n: p.detach().to(device).expand(k, *p.shape).clone() for n, p in trained.items()}
    fixed = {n: t.detach().to(device) for n, t in model.state_dict().items() if n not in params}
    momentum: dict[str, torch.Tensor | None] = dict.fromkeys(params)

    def mean_loss(
        p: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor, m: torch.Tensor
    ) -> torch.Tensor:
        logits = functional_call(model, {**p, **fixed}, (x,))
        return (F.cross_entropy(logits, y, reduction="none") * m).sum() / m.sum()

    step_grads = vmap(grad_and_value(mean_loss))
    x_all, y_all = x.to(device), y.to(device)
    offsets = torch.tensor([0, *sizes]).cumsum(0)[:-1].unsqueeze(1)
    plans = [batches(n, cfg, g) for n, g in zip(sizes, generators, strict=True)]
    totals = torch.zeros(k, dtype=torch.float64)
    was_training = model.training
    model.train()
    try:
        for step in range(max(len(p) for p in plans)):
            rows, mask, active = _step_batch(plans, offsets, step)
            rows, mask, active = rows.to(device), mask.to(device), active.to(device)
            grads, losses = step_grads(params, x_all[rows], y_all[rows], mask.float())
            totals += torch.where(active, losses, 0).detach().double().cpu()
            params = _sgd(params, grads, momentum, active, cfg)
    finally:
        model.train(was_training)
    counts = torch.tensor([len(p) for p in plans], dtype=torch.float64)
    stacked = {
        n: params[n] if n in params else fixed[n].expand(k, *fixed[n].shape)
        for n in model.state_dict()
    }
    return stacked, (totals / counts).tolist()


@torch.no_grad()
def _sgd(
    params: dict[str, torch.Tensor],
    grads: dict[str, torch.Tensor],
    momentum: dict[str, torch.Tensor | None],
    active: torch.Tensor,
    cfg: LocalTraining,
) -> dict[str, torch.Tensor]:
    """:func:`sgd_step` on every client at once; inactive clients keep parameters and buffers
    (selected with ``torch.where``, skipped when every client steps: the same values)."""
    everyone = bool(active.all())
    out = {}
    for name, p in params.items():
        keep = active.view(-1, *[1] * (p.dim() - 1))
        d_p = grads[name] if cfg.weight_decay == 0 else grads[name].add(p, alpha=cfg.weight_decay)
        if cfg.momentum != 0:
            buffer = momentum[name]
            # the first step of each client sets its buffer to d_p, as torch's SGD does
            new = d_p.clone() if buffer is None else buffer * cfg.momentum + d_p
            momentum[name] = new if buffer is None or everyone else torch.where(keep, new, buffer)
            d_p = momentum[name]  # type: ignore[assignment]
        stepped = torch.add(p, d_p, alpha=-cfg.lr)
        out[name] = stepped if everyone else torch.where(keep, stepped, p)
    return out
