"""A Little Is Enough (Baruch et al. 2019, Algorithm 3; docs/conventions.md §C19)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import ClassVar, Literal

import torch

from fedpoison.attacks.base import UPDATE_ATTACKS, AdversaryView, MaliciousReplies, UpdateAttack
from fedpoison.attacks.common import coordinate_std, repeat_rows
from fedpoison.attacks.threat import Knowledge

StatSource = Literal["known", "own", "benign"]


@functools.cache
def _inverse_normal_cdf() -> Callable[[float], float]:
    """SciPy's ``ndtri`` (= ``scipy.stats.norm.ppf``), imported on first use: importing SciPy
    costs ~0.3 s, so :class:`ALIE` imports it when built, before round 1, and runs without ALIE
    never pay it."""
    from scipy.special import ndtri

    return ndtri


def alie_z_max(n: int, f: int) -> float:
    """``z_max = Φ⁻¹((n − f − s)/(n − f))`` with ``s = ⌊n/2 + 1⌋ − f`` supporters needed.

    Baruch et al. 2019, Algorithm 3, lines 1–2 (the largest z with ``Φ(z) < (n−f−s)/(n−f)``).
    E.g. ``(50, 10) → 0.2533``, ``(100, 20) → 0.2858``, ``(10, 2) → 0.0``. Raises ``ValueError``
    when the quantile is not finite (``n ≤ 2`` or ``f > ⌊n/2⌋``: no benign supporter needed).

        >>> from fedpoison.attacks import alie_z_max
        >>> [round(alie_z_max(n, f), 4) for n, f in [(50, 10), (100, 20), (10, 2)]]
        [0.2533, 0.2858, 0.0]
    """
    if not 0 <= f < n:
        raise ValueError(f"alie_z_max: needs 0 ≤ f < n, got n={n}, f={f}")
    s = math.floor(n / 2 + 1) - f
    z = float(_inverse_normal_cdf()((n - f - s) / (n - f)))
    if not math.isfinite(z):
        raise ValueError(
            f"alie_z_max: Φ⁻¹((n−f−s)/(n−f)) is infinite for n={n}, f={f} (s={s}); "
            "needs n ≥ 3 and f ≤ ⌊n/2⌋, or give z explicitly"
        )
    return z


def alie_attack(
    known: torch.Tensor,
    num_malicious: int,
    z: float,
    *,
    sign: int = 1,
    unbiased_std: bool = False,
) -> torch.Tensor:
    """``m`` identical rows ``μ + sign·z·σ`` (Algorithm 3, lines 3–8).

    ``μ``, ``σ`` are the coordinate-wise mean and std of ``known`` (population std unless
    ``unbiased_std``, as the official code). Sign convention: the paper perturbs the shared
    *parameters* with ``+z`` and the official code subtracts ``z·σ`` from *gradients*; on
    deltas (``Δ = w_i − w``, ``Δ ≈ −lr·g``) both are ``μ_Δ + z·σ_Δ``, hence ``sign=+1``.
    Blades/FLPoison (``+z`` on gradients) correspond to ``sign=-1`` here.

    Example: ``μ = (1, 3)`` and population ``σ = (1, 1)``.

        >>> import torch
        >>> from fedpoison.attacks import alie_attack
        >>> own = torch.tensor([[0.0, 2.0], [2.0, 4.0]])
        >>> alie_attack(own, 2, z=0.5).tolist()
        [[1.5, 3.5], [1.5, 3.5]]
        >>> alie_attack(own, 1, z=0.5, sign=-1).tolist()
        [[0.5, 2.5]]
    """
    if sign not in (-1, 1):
        raise ValueError(f"alie: sign must be +1 or -1, got {sign}")
    mu = known.mean(dim=0)
    sigma = coordinate_std(known, unbiased_std)
    return repeat_rows(mu + (sign * z) * sigma, num_malicious)


@UPDATE_ATTACKS.register("alie")
class ALIE(UpdateAttack):
    """ALIE: all attackers send ``μ + sign·z·σ`` of the updates they know.

    Args:
        z: ``None`` ⇒ :func:`alie_z_max` ``(n, m)`` with ``n = view.num_participants`` and
            ``m = view.num_malicious`` of the round.
        sign: ``+1`` (paper and official code in delta form, see :func:`alie_attack`) or ``-1``.
        stat_source: where ``μ, σ`` come from (docs/conventions.md §C4): ``known`` = whatever
            the view grants (own honest updates; plus the benign ones under ``knowledge=all``),
            ``own`` = the attackers' own honest updates (official code), ``benign`` = benign
            updates only (Blades/FLPoison; needs ``knowledge=all``).
        unbiased_std: ``False`` = population std (official code); ``True`` as Karimireddy.
    """

    paper: ClassVar[str] = "Baruch et al. 2019, A Little Is Enough (NeurIPS)"
    knowledge: ClassVar[Knowledge] = "own"
    needs_defense: ClassVar[bool] = False

    def __init__(
        self,
        z: float | None = None,
        sign: int = 1,
        stat_source: StatSource = "known",
        unbiased_std: bool = False,
    ) -> None:
        if stat_source not in ("known", "own", "benign"):
            raise ValueError(f"alie: stat_source must be known|own|benign, got {stat_source!r}")
        if sign not in (-1, 1):
            raise ValueError(f"alie: sign must be +1 or -1, got {sign}")
        self.z = None if z is None else float(z)
        if self.z is None:
            _inverse_normal_cdf()  # a one-off set-up cost, not round 1's aggregation time
        self.sign = int(sign)
        self.stat_source: StatSource = stat_source
        self.unbiased_std = bool(unbiased_std)

    def required_knowledge(self) -> Knowledge:
        return "all" if self.stat_source == "benign" else "own"

    def reads_own_updates(self) -> bool:
        """Only ``stat_source=benign`` leaves the attackers' own honest updates unread."""
        return self.stat_source != "benign"

    def _statistics_rows(self, view: AdversaryView) -> torch.Tensor:
        if self.stat_source == "own":
            return view.own
        if self.stat_source == "benign":
            if view.benign is None:
                raise ValueError("alie with stat_source=benign needs threat.knowledge=all")
            return view.benign
        return view.known

    def craft(self, view: AdversaryView) -> MaliciousReplies:
        z = self.z if self.z is not None else alie_z_max(view.num_participants, view.num_malicious)
        rows = alie_attack(
            self._statistics_rows(view),
            view.num_malicious,
            z,
            sign=self.sign,
            unbiased_std=self.unbiased_std,
        )
        return MaliciousReplies(rows)
