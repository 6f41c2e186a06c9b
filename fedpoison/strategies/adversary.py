"""The adversary stage: replace the malicious participants' rows before the defense runs.

The stage knows which rows are malicious (it *is* the colluding adversary); what the update
attack may see is limited to the :class:`~fedpoison.attacks.base.AdversaryView` built from
the threat model — only what it grants is present in the view.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from fedpoison.aggregators.pipeline import Defense
from fedpoison.attacks.base import MaliciousReplies, UpdateAttack
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
    """Applies ``attack`` to the malicious rows of each round the threat model makes active.

    ``defense`` is the server's whole defense (pre-aggregators and rule), which the view carries
    when the adversary may know it (``None`` around a strategy that is not a fedpoison
    defense, e.g. in :class:`~fedpoison.Adversary`).
    """

    attack: UpdateAttack
    threat: ThreatModel
    defense: Defense | None
    server_lr: float
    seed: int

    def craft(
        self,
        updates: torch.Tensor,
        malicious: torch.Tensor,
        global_weights: torch.Tensor,
        f: int | None,
        server_round: int,
        client_ids: Sequence[int] | None = None,
    ) -> MaliciousReplies | None:
        """The attack's rows for the ``malicious`` (boolean mask) rows of ``updates``, from the
        view the threat model grants; ``None`` when the adversary does not act this round or
        no row is malicious. ``client_ids``: the rows' client ids, passed on in the view.
        Inputs are not modified."""
        if not self.threat.active(server_round) or not bool(malicious.any()):
            return None
        own_ids = benign_ids = None
        if client_ids is not None:
            flags = malicious.tolist()
            own_ids = tuple(c for c, bad in zip(client_ids, flags, strict=True) if bad)
            benign_ids = tuple(c for c, bad in zip(client_ids, flags, strict=True) if not bad)
        view = build_view(
            own=updates[malicious],
            benign=updates[~malicious],
            threat=self.threat,
            global_weights=global_weights,
            server_lr=self.server_lr,
            generator=torch_generator(self.seed, ADVERSARY, server_round, device=updates.device),
            defense=self.defense,
            f=f,
            server_round=server_round,
            own_ids=own_ids,
            benign_ids=benign_ids,
        )
        return self.attack.craft(view)

    def __call__(
        self,
        updates: torch.Tensor,
        num_examples: torch.Tensor,
        malicious: torch.Tensor,
        global_weights: torch.Tensor,
        f: int,
        server_round: int,
        client_ids: Sequence[int] | None = None,
    ) -> AdversaryOutcome:
        """``updates`` with the malicious rows (and counts) replaced; inputs are not modified."""
        crafted = self.craft(updates, malicious, global_weights, f, server_round, client_ids)
        if crafted is None:
            return AdversaryOutcome(updates, num_examples)
        out = updates.clone()
        out[malicious] = crafted.updates.to(dtype=updates.dtype, device=updates.device)
        counts = num_examples.clone()
        if crafted.num_examples is not None:
            counts[malicious] = crafted.num_examples.to(counts.dtype)
        return AdversaryOutcome(out, counts)
