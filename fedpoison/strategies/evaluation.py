"""Server-side evaluation of the global model: test accuracy/loss and backdoor success rate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from flwr.app import ArrayRecord, MetricRecord
from torch import nn

from fedpoison.records import to_state_dict
from fedpoison.training.local import evaluate

SuccessSets = dict[str, tuple[torch.Tensor, torch.Tensor]]


@dataclass
class ServerEvaluator:
    """Evaluates the global model on the held-out test set (and the attack's success set),
    as a Flower ``evaluate_fn``: after rounds that are multiples of ``every`` and after
    ``last_round``; other rounds, and the initial model (round 0), give ``None``.

    ``success_set`` gives ``asr``; ``named_success`` adds one accuracy per named set (DBA's
    ``asr_piece0``, ``asr_piece1``, ...: :meth:`~fedpoison.attacks.base.DataAttack.success_sets`).
    ``refresh``, for attacks whose trigger depends on the received model (A3FL), is called
    before an evaluated round ``r`` with ``r`` and the global model of the previous call (the
    one the round's attackers received); the sets it returns (``"asr"`` and named ones)
    replace the current ones, ``None`` keeps them (after ``threat.end_round``: the last
    trigger). ``previous`` is that model; a resumed run sets it to the checkpoint's.
    """

    model: nn.Module
    x_test: torch.Tensor
    y_test: torch.Tensor
    device: torch.device
    success_set: tuple[torch.Tensor, torch.Tensor] | None = None
    every: int = 1
    last_round: int | None = None
    named_success: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    refresh: Callable[[int, ArrayRecord], SuccessSets | None] | None = None
    previous: ArrayRecord | None = None

    def __call__(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        previous, self.previous = self.previous, arrays
        if server_round == 0 or (
            server_round % self.every != 0 and server_round != self.last_round
        ):
            return None
        if self.refresh is not None and previous is not None:
            sets = self.refresh(server_round, previous)
            if sets is not None:
                self.success_set = sets.pop("asr", None)
                self.named_success = sets
        self.model.load_state_dict(to_state_dict(arrays))
        loss, acc = evaluate(self.model, self.x_test, self.y_test, self.device)
        metrics = MetricRecord({"accuracy": acc, "loss": loss})
        if self.success_set is not None:
            _, metrics["asr"] = evaluate(self.model, *self.success_set, self.device)
        for name, (x, y) in self.named_success.items():
            _, metrics[name] = evaluate(self.model, x, y, self.device)
        return metrics
