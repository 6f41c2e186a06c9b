"""Blended backdoor (Chen, Liu, Li, Lu, Song 2017, "Targeted Backdoor Attacks on Deep Learning
Systems Using Data Poisoning", arXiv:1712.05526; REFERENCES D31)."""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.attacks.base import DATA_ATTACKS, DataAttack
from fedpoison.attacks.label_flip import poison_with_trigger, triggered_success_set
from fedpoison.attacks.triggers import blend, random_pattern


@DATA_ATTACKS.register("blended")
class Blended(DataAttack):
    """Blend a key pattern into the whole image, ``x' = (1 − α)·x + α·k``, and relabel.

    The key ``k`` is Chen et al.'s "random pattern" option: uniform noise in ``[low, high)``
    of the image's size ``(C, H, W)``, drawn once from ``key_seed`` (no image file is
    needed, and it works on 1- and 3-channel images alike). Poisoned training inputs use
    ``alpha_train``, the success set ``alpha_test`` (the paper also tests a larger α at test
    time); both default to 0.2, the paper's training value.

    Blend space: the paper blends in ``[0, 1]`` pixel space before normalisation. The blend is
    affine, so blending standardised inputs with a key in the standardised space is the
    same; for standardised datasets set ``low``/``high`` to the standardised images of 0 and
    1 (e.g. MNIST ``−0.424``, ``2.821``). Peer note: BackFed blends its bundled
    ``blended.jpeg``; its class default path does not exist, only its YAML supplies it.

    Args:
        alpha_train: blend weight of the poisoned training inputs, in ``[0, 1]``.
        alpha_test: blend weight of the success set, in ``[0, 1]``.
        target: the label blended inputs should receive.
        poison_fraction: fraction of the client's samples (``⌊fraction·N⌋``, drawn with the
            passed generator) that are blended and relabelled.
        low, high: range of the key's uniform noise, in the data's space.
        key_seed: seed of the key (independent of the run seed: clients and server share it).
    """

    paper: ClassVar[str] = "Chen et al. 2017, Targeted Backdoor Attacks (blended)"

    def __init__(
        self,
        alpha_train: float = 0.2,
        alpha_test: float = 0.2,
        target: int = 0,
        poison_fraction: float = 0.5,
        low: float = 0.0,
        high: float = 1.0,
        key_seed: int = 0,
    ) -> None:
        for name, alpha in (("alpha_train", alpha_train), ("alpha_test", alpha_test)):
            if not 0.0 <= alpha <= 1.0:
                raise ValueError(f"blended: {name} must be in [0, 1], got {alpha}")
        if not 0.0 <= poison_fraction <= 1.0:
            raise ValueError(f"blended: poison_fraction must be in [0, 1], got {poison_fraction}")
        if not low < high:
            raise ValueError(f"blended: need low < high, got [{low}, {high})")
        self.alpha_train = float(alpha_train)
        self.alpha_test = float(alpha_test)
        self.target = int(target)
        self.poison_fraction = float(poison_fraction)
        self.low, self.high = float(low), float(high)
        self.key_seed = int(key_seed)

    def key(self, shape: tuple[int, int, int]) -> torch.Tensor:
        """The ``(C, H, W)`` key pattern (the same for every client and the server)."""
        return random_pattern(shape, self.low, self.high, self.key_seed)

    def apply_trigger(self, x: torch.Tensor, alpha: float) -> torch.Tensor:
        """A blended copy of the ``(N, C, H, W)`` batch ``x``."""
        return blend(x, self.key(tuple(x.shape[1:])), alpha)  # type: ignore[arg-type]

    def poison(
        self, x: torch.Tensor, y: torch.Tensor, num_classes: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return poison_with_trigger(
            "blended",
            x,
            y,
            self.target,
            num_classes,
            self.poison_fraction,
            lambda rows: self.apply_trigger(rows, self.alpha_train),
            generator,
        )

    def success_set(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Test inputs blended with ``alpha_test`` whose true label is not ``target``, all
        labelled ``target``."""
        return triggered_success_set(
            x, y, self.target, lambda rows: self.apply_trigger(rows, self.alpha_test)
        )
