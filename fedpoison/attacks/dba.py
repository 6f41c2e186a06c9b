"""DBA, the distributed backdoor attack (Xie, Huang, Chen, Li, ICLR 2020; REFERENCES D30)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import ClassVar

import torch

from fedpoison.attacks.base import DATA_ATTACKS, DataAttack
from fedpoison.attacks.label_flip import poison_with_trigger, triggered_success_set
from fedpoison.attacks.shaping import ClientRound
from fedpoison.attacks.triggers import Patch, fit_patch, patch_mask, stamp


def dba_pieces(
    piece_shape: Sequence[int], gap: int, grid: Sequence[int], origin: Sequence[int] = (0, 0)
) -> list[Patch]:
    """The local trigger pieces, row-major on a ``grid = (rows, cols)`` of ``h × w`` strips
    ``gap`` pixels apart: piece ``k = i·cols + j`` is the patch at row
    ``origin_r + i·(h + gap)``, column ``origin_c + j·(w + gap)``.

    The official MNIST layout (1×4 strips, gap 2, 2×2): rows 0 and 3, columns 0–3 and 6–9.

        >>> dba_pieces((1, 4), 2, (2, 2))
        [(0, 0, 1, 4), (0, 6, 1, 4), (3, 0, 1, 4), (3, 6, 1, 4)]
    """
    h, w = int(piece_shape[0]), int(piece_shape[1])
    rows, cols = int(grid[0]), int(grid[1])
    if min(h, w, rows, cols) < 1 or gap < 0:
        raise ValueError(
            f"dba: need piece_shape ≥ 1, grid ≥ 1 and gap ≥ 0, got {piece_shape}, {grid}, {gap}"
        )
    r0, c0 = int(origin[0]), int(origin[1])
    return [
        (r0 + i * (h + gap), c0 + j * (w + gap), h, w) for i in range(rows) for j in range(cols)
    ]


@DATA_ATTACKS.register("dba")
class DBA(DataAttack):
    """The global trigger split into local pieces, one per attacker; ASR with the global one.

    The global trigger is the union of ``grid[0]·grid[1]`` strips (:func:`dba_pieces`) set to
    ``value`` on every channel. The attacker of rank ``k`` in the malicious pool (sorted by
    partition id) stamps **local piece ``k mod P``** only, on ``⌊poison_fraction·N⌋`` of its
    examples, relabelled ``target``. The paper (and official code) requires exactly
    ``P`` attackers; with more, pieces repeat (FLPoison's ``id mod 4``); with fewer, some
    pieces are never trained. A pool of one attacker uses the global trigger (the paper's
    "centralized" baseline). The global trigger always holds every piece (BackFed's shrinks
    to the configured attackers' pieces).

    Success sets: ``asr`` with the **global** trigger (``centralized_test_trigger``) and
    ``asr_piece0``, ``asr_piece1``, ... with each local piece (``vis_trigger_split_test``),
    on the test images whose label is not ``target``.

    Poisoning differs from the official code in one respect: the code poisons the first
    ``poisoning_per_batch`` images of every batch (20 of 64 on MNIST), here a fixed
    ``poison_fraction`` of the partition (default 0.3 ≈ 20/64) as the other data attacks do;
    the official boost (``scale_weights_poison``) is a separate update attack or ``pgd``'s
    ``scale``.

    Args:
        piece_shape: ``(h, w)`` of each strip (MNIST 1×4, CIFAR-10 1×6; 8×8 digits need
            e.g. 1×3 with gap 1).
        gap: pixels between strips (MNIST 2, CIFAR-10 3).
        grid: ``(rows, cols)`` of pieces (official 2×2, ``trigger_num = 4``).
        origin: ``(row, col)`` of the first strip.
        value: the trigger's pixel value in the data's space.
        target: the label triggered inputs should receive (official ``poison_label_swap`` 2).
        poison_fraction: fraction of the client's examples that are poisoned.
        piece: the local piece this instance stamps (``None`` = the global trigger);
            :meth:`for_client` sets it from the client's rank.
    """

    paper: ClassVar[str] = "Xie et al. 2020 (ICLR), DBA: Distributed Backdoor Attacks"

    def __init__(
        self,
        piece_shape: Sequence[int] = (1, 4),
        gap: int = 2,
        grid: Sequence[int] = (2, 2),
        origin: Sequence[int] = (0, 0),
        value: float = 1.0,
        target: int = 2,
        poison_fraction: float = 0.3,
        piece: int | None = None,
    ) -> None:
        self.pieces = dba_pieces(piece_shape, gap, grid, origin)
        if not 0.0 <= poison_fraction <= 1.0:
            raise ValueError(f"dba: poison_fraction must be in [0, 1], got {poison_fraction}")
        if piece is not None and not 0 <= piece < len(self.pieces):
            raise ValueError(f"dba: piece must be in [0, {len(self.pieces) - 1}], got {piece}")
        self.value, self.target = float(value), int(target)
        self.poison_fraction, self.piece = float(poison_fraction), piece

    def mask(self, height: int, width: int, piece: int | None) -> torch.Tensor:
        """The ``(H, W)`` mask of local ``piece`` (``None``: the global trigger)."""
        chosen = self.pieces if piece is None else [self.pieces[piece]]
        return patch_mask([fit_patch(p, height, width, "dba") for p in chosen], height, width)

    def apply_trigger(self, x: torch.Tensor, piece: int | None) -> torch.Tensor:
        """A copy of the ``(N, C, H, W)`` batch with ``piece`` (or the global trigger)."""
        return stamp(x, self.mask(x.shape[-2], x.shape[-1], piece), self.value)

    def for_client(self, client: ClientRound) -> DataAttack:
        """This attack stamping the client's local piece (``rank mod P``; the global trigger
        when the pool has one attacker)."""
        out = copy.copy(self)
        out.piece = None if client.num_malicious == 1 else client.rank % len(self.pieces)
        return out

    def poison(
        self, x: torch.Tensor, y: torch.Tensor, num_classes: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return poison_with_trigger(
            "dba",
            x,
            y,
            self.target,
            num_classes,
            self.poison_fraction,
            lambda rows: self.apply_trigger(rows, self.piece),
            generator,
        )

    def success_set(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Non-target test inputs with the global trigger, labelled ``target``."""
        return triggered_success_set(x, y, self.target, lambda rows: self.apply_trigger(rows, None))

    def success_sets(
        self, x: torch.Tensor, y: torch.Tensor
    ) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """``asr`` (global trigger) and ``asr_piece<k>`` (local piece ``k``) for every piece."""
        keep = y != self.target
        labels = torch.full_like(y[keep], self.target)
        sets = {"asr": (self.apply_trigger(x[keep], None), labels)}
        for k in range(len(self.pieces)):
            sets[f"asr_piece{k}"] = (self.apply_trigger(x[keep], k), labels)
        return sets
