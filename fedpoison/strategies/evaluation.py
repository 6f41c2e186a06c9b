"""Server-side evaluation of the global model: test accuracy/loss and backdoor success rate."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from flwr.app import ArrayRecord, MetricRecord
from torch import nn

from fedpoison.records import to_state_dict
from fedpoison.training.local import evaluate


@dataclass
class ServerEvaluator:
    """Evaluates the global model on the held-out test set (and the attack's success set),
    as a Flower ``evaluate_fn``: after rounds that are multiples of ``every`` and after
    ``last_round``; other rounds, and the initial model (round 0), give ``None``.

    ``success_set`` gives ``asr``; ``named_success`` adds one accuracy per named set (DBA's
    ``asr_piece0``, ``asr_piece1``, ...: :meth:`~fedpoison.attacks.base.DataAttack.success_sets`).
    """

    model: nn.Module
    x_test: torch.Tensor
    y_test: torch.Tensor
    device: torch.device
    success_set: tuple[torch.Tensor, torch.Tensor] | None = None
    every: int = 1
    last_round: int | None = None
    named_success: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def __call__(self, server_round: int, arrays: ArrayRecord) -> MetricRecord | None:
        if server_round == 0 or (
            server_round % self.every != 0 and server_round != self.last_round
        ):
            return None
        self.model.load_state_dict(to_state_dict(arrays))
        loss, acc = evaluate(self.model, self.x_test, self.y_test, self.device)
        metrics = MetricRecord({"accuracy": acc, "loss": loss})
        if self.success_set is not None:
            _, metrics["asr"] = evaluate(self.model, *self.success_set, self.device)
        for name, (x, y) in self.named_success.items():
            _, metrics[name] = evaluate(self.model, x, y, self.device)
        return metrics
