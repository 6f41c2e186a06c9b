"""Label flipping (Fang et al. 2020; FLTrust; FoundationFL; docs/conventions.md §C27)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import ClassVar

import torch

from fedpoison.attacks.base import DATA_ATTACKS, DataAttack


def poison_indices(
    candidates: torch.Tensor, fraction: float, generator: torch.Generator
) -> torch.Tensor:
    """``⌊fraction·k⌋`` of the ``k`` indices in ``candidates``, chosen uniformly without
    replacement with ``generator`` (returned on ``candidates``' device)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"poison_fraction must be in [0, 1], got {fraction}")
    count = int(fraction * candidates.numel())
    order = torch.randperm(candidates.numel(), generator=generator, device=generator.device)
    return candidates[order[:count].to(candidates.device)]


Trigger = Callable[[torch.Tensor], torch.Tensor]


def poison_with_trigger(
    name: str,
    x: torch.Tensor,
    y: torch.Tensor,
    target: int,
    num_classes: int,
    fraction: float,
    trigger: Trigger,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A backdoor's poisoning (BadNets convention, shared by ``backdoor``, ``blended``,
    ``dba``, ``a3fl``): :func:`poison_indices` of the rows get ``trigger`` and label
    ``target``; copies, inputs not modified."""
    if not 0 <= target < num_classes:
        raise ValueError(f"{name}: target {target} is outside [0, {num_classes - 1}]")
    chosen = poison_indices(torch.arange(y.numel(), device=y.device), fraction, generator)
    x_new, y_new = x.clone(), y.clone()
    x_new[chosen] = trigger(x[chosen])
    y_new[chosen] = target
    return x_new, y_new


def triggered_success_set(
    x: torch.Tensor, y: torch.Tensor, target: int, trigger: Trigger
) -> tuple[torch.Tensor, torch.Tensor]:
    """A backdoor's success set: the test inputs whose true label is not ``target``, with
    ``trigger``, all labelled ``target``."""
    keep = y != target
    return trigger(x[keep]), torch.full_like(y[keep], target)


@DATA_ATTACKS.register("label_flip")
class LabelFlip(DataAttack):
    """Relabel a fraction of a malicious client's samples.

    Args:
        mapping: ``{source: target}``; ``None`` = ``l → C − 1 − l`` for every class (Fang,
            FLTrust, FoundationFL). With a mapping only samples whose label is a source are
            eligible.
        poison_fraction: fraction of the *eligible* samples that are relabelled
            (``⌊fraction·k⌋``, drawn with the passed generator); 1.0 = all, as in Fang et al.
    """

    paper: ClassVar[str] = "Fang et al. 2020 (USENIX Security), label-flipping baseline"

    def __init__(
        self, mapping: Mapping[int, int] | None = None, poison_fraction: float = 1.0
    ) -> None:
        if not 0.0 <= poison_fraction <= 1.0:
            raise ValueError(
                f"label_flip: poison_fraction must be in [0, 1], got {poison_fraction}"
            )
        self.mapping = None if mapping is None else {int(k): int(v) for k, v in mapping.items()}
        self.poison_fraction = float(poison_fraction)

    def target_labels(self, y: torch.Tensor, num_classes: int) -> torch.Tensor:
        """The flipped label of every entry of ``y`` (unchanged where the mapping has none)."""
        if self.mapping is None:
            return num_classes - 1 - y
        table = torch.arange(num_classes, device=y.device, dtype=y.dtype)
        for source, target in self.mapping.items():
            if not (0 <= source < num_classes and 0 <= target < num_classes):
                raise ValueError(
                    f"label_flip: mapping {source}→{target} is outside [0, {num_classes - 1}]"
                )
            table[source] = target
        return table[y]

    def poison(
        self, x: torch.Tensor, y: torch.Tensor, num_classes: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mapping is None:
            eligible = torch.arange(y.numel(), device=y.device)
        else:
            sources = torch.tensor(list(self.mapping), device=y.device, dtype=y.dtype)
            eligible = torch.nonzero(torch.isin(y, sources)).flatten()
        chosen = poison_indices(eligible, self.poison_fraction, generator)
        y_new = y.clone()
        y_new[chosen] = self.target_labels(y[chosen], num_classes)
        return x.clone(), y_new
