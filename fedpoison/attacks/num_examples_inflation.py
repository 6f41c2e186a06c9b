"""Reported-size inflation: malicious clients claim a huge ``num-examples`` (attacks FedAvg)."""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.aggregators.pipeline import Defense
from fedpoison.attacks.base import UPDATE_ATTACKS, AdversaryView, MaliciousReplies, UpdateAttack
from fedpoison.attacks.threat import Knowledge


def inflate_num_examples(updates: torch.Tensor, value: int = 10**6) -> torch.Tensor:
    """The ``num-examples`` ``(m,)`` (int64, on ``updates``' device) each of the ``m`` rows of
    ``updates`` reports: ``value`` for every one. FedAvg weights row ``i`` by
    ``n_i / Σ n_j``, so the malicious rows dominate the weighted mean; robust rules that
    ignore the counts are unaffected."""
    if value < 1:
        raise ValueError(f"num_examples_inflation: value must be ≥ 1, got {value}")
    return torch.full((updates.shape[0],), int(value), dtype=torch.int64, device=updates.device)


@UPDATE_ATTACKS.register("num_examples_inflation")
class NumExamplesInflation(UpdateAttack):
    """Send honest rows (or those of ``base``, another update attack) with inflated counts.

    Args:
        value: the ``num-examples`` every malicious participant reports.
        base: an update attack whose rows are sent; ``None`` = the honest updates.
    """

    paper: ClassVar[str] = "FedAvg weighting (McMahan et al. 2017); reported-size manipulation"
    knowledge: ClassVar[Knowledge] = "own"
    needs_defense: ClassVar[bool] = False

    def __init__(self, value: int = 10**6, base: UpdateAttack | None = None) -> None:
        if value < 1:
            raise ValueError(f"num_examples_inflation: value must be ≥ 1, got {value}")
        self.value = int(value)
        self.base = base

    def required_knowledge(self) -> Knowledge:
        return "own" if self.base is None else self.base.required_knowledge()

    def requires_defense(self) -> bool:
        return self.base is not None and self.base.requires_defense()

    def per_client(self) -> bool:
        return self.base is None or self.base.per_client()

    def check_defense(self, defense: Defense) -> None:
        """The ``base`` attack's check (e.g. a defense-aware base that cannot simulate FLTrust)."""
        if self.base is not None:
            self.base.check_defense(defense)

    def craft(self, view: AdversaryView) -> MaliciousReplies:
        rows = view.own.clone() if self.base is None else self.base.craft(view).updates
        return MaliciousReplies(rows, inflate_num_examples(rows, self.value))
