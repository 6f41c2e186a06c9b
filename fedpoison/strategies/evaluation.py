"""Server-side evaluation of the global model: test accuracy/loss and backdoor success rate."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from flwr.app import ArrayRecord
from torch import nn

from fedpoison.clients.training import evaluate
from fedpoison.records import to_state_dict


@dataclass
class ServerEvaluator:
    """Evaluates a global model on the held-out test set (and the attack's success set)."""

    model: nn.Module
    x_test: torch.Tensor
    y_test: torch.Tensor
    device: torch.device
    success_set: tuple[torch.Tensor, torch.Tensor] | None = None

    def __call__(self, arrays: ArrayRecord) -> dict[str, float]:
        self.model.load_state_dict(to_state_dict(arrays))
        loss, acc = evaluate(self.model, self.x_test, self.y_test, self.device)
        metrics = {"accuracy": acc, "loss": loss}
        if self.success_set is not None:
            _, asr = evaluate(self.model, *self.success_set, self.device)
            metrics["asr"] = asr
        return metrics
