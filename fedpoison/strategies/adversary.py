"""The adversary stage: replace the malicious participants' rows before the defense runs.

The stage knows which rows are malicious (it *is* the colluding adversary); what the update
attack may see is limited to the :class:`~fedpoison.attacks.base.AdversaryView` built from
the threat model — only what it grants is present in the view.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fedpoison.aggregators.pipeline import Defense
from fedpoison.attacks.base import UpdateAttack
from fedpoison.attacks.spec import build_view
from fedpoison.attacks.threat import ThreatModel
from fedpoison.seeding import ADVERSARY, torch_generator


@dataclass(frozen=True)
class AdversaryOutcome:
    """Rows and reported example counts after the attack."""

    updates: torch.Tensor
    num_examples: torch.Tensor


@dataclass
class AdversaryStage:
    """Applies ``attack`` to the malicious rows of each round the threat model makes active."""

    attack: UpdateAttack
    threat: ThreatModel
    defense: Defense
    server_lr: float
    seed: int

    def __call__(
        self,
        updates: torch.Tensor,
        num_examples: torch.Tensor,
        malicious: torch.Tensor,
        global_weights: torch.Tensor,
        f: int,
        server_round: int,
    ) -> AdversaryOutcome:
        """``malicious`` is a boolean mask over the rows; inputs are not modified."""
        if not self.threat.active(server_round) or not bool(malicious.any()):
            return AdversaryOutcome(updates, num_examples)
        view = build_view(
            own=updates[malicious],
            benign=updates[~malicious],
            threat=self.threat,
            global_weights=global_weights,
            server_lr=self.server_lr,
            generator=torch_generator(self.seed, ADVERSARY, server_round, device=updates.device),
            defense=self.defense.rule,
            f=f,
            server_round=server_round,
        )
        crafted = self.attack.craft(view)
        out = updates.clone()
        out[malicious] = crafted.updates.to(dtype=updates.dtype, device=updates.device)
        counts = num_examples.clone()
        if crafted.num_examples is not None:
            counts[malicious] = crafted.num_examples.to(counts.dtype)
        return AdversaryOutcome(out, counts)
