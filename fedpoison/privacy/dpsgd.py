"""DP-SGD on every client (Abadi et al. 2016) with Opacus (``privacy=dpsgd``).

Each local step computes per-example gradients (Opacus ``GradSampleModule``), clips each to
``max_grad_norm`` C, sums them, adds N(0, (z·C)²·I) and divides by the batch size (Opacus
``DPOptimizer`` around ``torch.optim.SGD`` with the run's lr, momentum and weight decay; the
noise comes from a generator seeded by (seed, round, client), so runs are reproducible).

The guarantee is example-level and per client: a client takes ``steps_per_round`` noisy
steps with batch B on its n_i examples (sampling rate B/n_i), every round. The accountant
charges the smallest partition's rate (the worst client) and every round (a client that is
not sampled releases nothing, so this over-counts: an upper bound). Models must be
Opacus-compatible (no BatchNorm: ``resnet8`` with ``norm=batch`` is refused before round 1).
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from fedpoison.privacy.accounting import Release
from fedpoison.privacy.base import DifferentialPrivacy, Setting, positive
from fedpoison.training.local import LocalTraining, batches


class DPSGD(DifferentialPrivacy):
    """Per-example clipping + noise during local training (``privacy=dpsgd``).

    Args:
        max_grad_norm: C, the per-example gradient bound.
        noise_multiplier: z; the noise std on the summed batch gradient is z·C.
        delta, accountant: see :class:`DifferentialPrivacy` (δ < 1/smallest partition).
    """

    name = "dpsgd"

    def __init__(
        self,
        max_grad_norm: float = 1.0,
        noise_multiplier: float = 1.0,
        delta: float = 1e-5,
        accountant: str = "rdp",
    ) -> None:
        super().__init__(noise_multiplier, delta, accountant)
        self.max_grad_norm = positive(max_grad_norm, "max_grad_norm")

    def check(self, setting: Setting) -> None:
        from opacus.validators import ModuleValidator  # Opacus imports take ~1.7 s: only when used

        errors = ModuleValidator.validate(setting.model, strict=False)
        if errors:
            raise ValueError(
                f"privacy=dpsgd needs an Opacus-compatible model: {errors[0]}; pick another model="
            )
        min_partition, procedure = setting.min_partition, setting.procedure
        self._check_delta(min_partition, "examples of the smallest partition")
        batch = min(procedure.batch_size, min_partition)
        steps = procedure.local_steps or procedure.local_epochs * math.ceil(
            min_partition / procedure.batch_size
        )
        self._set_release(Release(self.noise_multiplier, batch, min_partition, steps))

    def train(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        procedure: LocalTraining,
        generator: torch.Generator,
        noise_generator: torch.Generator,
        device: torch.device,
    ) -> float:
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        if len(y) == 0:
            raise ValueError("local_train: the client holds no examples")
        model.train()
        private = GradSampleModule(model)
        sgd = torch.optim.SGD(
            model.parameters(),
            lr=procedure.lr,
            momentum=procedure.momentum,
            weight_decay=procedure.weight_decay,
        )
        optimizer = DPOptimizer(
            sgd,
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=self.max_grad_norm,
            expected_batch_size=min(procedure.batch_size, len(y)),
            generator=noise_generator,
        )
        total, steps = 0.0, 0
        try:
            for idx in batches(len(y), procedure, generator):
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(private(x[idx].to(device)), y[idx].to(device))
                with (
                    warnings.catch_warnings()
                ):  # Opacus' hooks on a first layer whose input needs no grad
                    warnings.filterwarnings("ignore", message="Full backward hook is firing")
                    loss.backward()
                optimizer.step()
                total += loss.item()
                steps += 1
        finally:
            private._close()
        for p in model.parameters():
            p.grad = None
        return total / max(steps, 1)
