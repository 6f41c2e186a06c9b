"""Gaussian noise baselines (Blanchard et al. 2017 / FoundationFL; Fang et al. 2020;
docs/conventions.md §C24)."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import torch

from fedpoison.attacks.base import UPDATE_ATTACKS, AdversaryView, MaliciousReplies, UpdateAttack
from fedpoison.attacks.common import normal
from fedpoison.attacks.threat import Knowledge

GaussianMode = Literal["blanchard", "fang"]


def gaussian_attack(
    known: torch.Tensor,
    num_malicious: int,
    generator: torch.Generator,
    *,
    variance: float = 200.0,
    mode: GaussianMode = "blanchard",
) -> torch.Tensor:
    """``m`` independent Gaussian rows ``(m, d)``.

    - ``mode="blanchard"``: each row ~ ``N(0, σ²·I)`` with ``σ² = variance`` (default 200, as
      FoundationFL and Blanchard et al.); ``known`` only fixes ``d``, dtype and device.
    - ``mode="fang"``: coordinate ``j`` ~ ``N(μ_j, σ_j²)`` with ``μ_j``, ``σ_j`` the mean and
      population std of the rows of ``known`` (Fang et al. use all before-attack models; here
      the updates the view grants, docs/conventions.md §C4). Gaussian noise around the mean
      model equals the same noise around the mean delta, so no translation is needed.
    """
    shape = (num_malicious, known.shape[1])
    noise = normal(shape, generator, known)
    if mode == "blanchard":
        return noise * math.sqrt(variance)
    if mode == "fang":
        return known.mean(dim=0) + noise * known.std(dim=0, correction=0)
    raise ValueError(f"gaussian: mode must be 'blanchard' or 'fang', got {mode!r}")


@UPDATE_ATTACKS.register("gaussian")
class Gaussian(UpdateAttack):
    """Random Gaussian updates; statistics (``mode="fang"``) from ``view.known``."""

    paper: ClassVar[str] = "Blanchard et al. 2017 (NeurIPS); Fang et al. 2020 (USENIX Sec.)"
    knowledge: ClassVar[Knowledge] = "own"
    needs_defense: ClassVar[bool] = False

    def __init__(self, variance: float = 200.0, mode: GaussianMode = "blanchard") -> None:
        if mode not in ("blanchard", "fang"):
            raise ValueError(f"gaussian: mode must be 'blanchard' or 'fang', got {mode!r}")
        self.variance = float(variance)
        self.mode: GaussianMode = mode

    def per_client(self) -> bool:
        """``blanchard`` needs nothing; ``fang`` needs the statistics of several updates."""
        return self.mode == "blanchard"

    def reads_own_updates(self) -> bool:
        """``fang`` takes its statistics from every known update, the attackers' own too."""
        return self.mode == "fang"

    def craft(self, view: AdversaryView) -> MaliciousReplies:
        rows = gaussian_attack(
            view.known, view.num_malicious, view.generator, variance=self.variance, mode=self.mode
        )
        return MaliciousReplies(rows)
