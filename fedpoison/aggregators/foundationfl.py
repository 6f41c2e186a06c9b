"""FoundationFL (Fang, Nabavirazavi, Liu, Sun, Iyengar, Yang, NDSS 2025, "Do We Really Need to
Design New Byzantine-robust Aggregation Rules?", arXiv:2501.17381), §IV-B and Algorithm 1.

Verified against the paper's text (docs/conventions.md §C30). With ``Δ_i`` the n client rows:

1. coordinate-wise extremes ``g_max[k] = max_i Δ_{i,k}``, ``g_min[k] = min_i Δ_{i,k}``
   (Eqs. 2–3, over the clients' rows only);
2. scores ``s_i = min(‖Δ_i − g_max‖, ‖Δ_i − g_min‖)``, L2 (Eq. 4; ``‖·‖`` is ℓ2 in §II);
3. ``i* = argmax_i s_i`` (Eq. 5), the update farthest from both extremes; the paper states no
   tie rule, fedpoison takes the first index;
4. ``m`` synthetic updates, exact copies of ``Δ_{i*}`` (Eqs. 6–7);
5. the base rule on the ``n + m`` rows: trimmed mean dropping ``b = f`` values per side (the
   paper's ``c = f``, §VI-A6; Theorem 1 asks ``f ≤ c ≤ (1/2 − v)(n + m)``) or the median (even
   count → midpoint, docs/conventions.md §C8).

The paper's default is ``m = n/2`` per round, half of the updates received (§VI-A6; 30 received
→ 15 synthetic under partial participation): ``FoundationFL(m=None)`` takes ``⌊n/2⌋``.

Influence is not bounded, and the paper's theorems do not say otherwise: they assume the
synthetic updates come from a clean server dataset (§V), not from the received rows. A Byzantine
row far from both extreme vectors scores highest and its ``m`` copies survive a trim of ``f``
per side: a row between two extreme Byzantine rows, IPM's ``−τ·mean`` whenever the mean has
coordinates of both signs (the minimum on some coordinates, the maximum on the others), and,
for the same reason, a row of Fang's trim attack, against which the paper reports the rule
unaffected (Table I). docs/conventions.md §C30 has the measurements.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import torch

from fedpoison.aggregators._common import check_f, check_updates, uniform
from fedpoison.aggregators._linalg import row_norms
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext
from fedpoison.aggregators.median import median
from fedpoison.aggregators.trimmed_mean import trimmed_mean

Base = Literal["trimmed_mean", "median"]


def foundational_scores(updates: torch.Tensor) -> torch.Tensor:
    """``s_i = min(‖Δ_i − g_max‖, ‖Δ_i − g_min‖)`` ``(n,)`` in the work dtype (Eq. 4)."""
    to_max = row_norms(updates - updates.max(dim=0).values)
    to_min = row_norms(updates - updates.min(dim=0).values)
    return torch.minimum(to_max, to_min)


def foundationfl(
    updates: torch.Tensor, f: int, *, m: int, base: Base = "trimmed_mean"
) -> torch.Tensor:
    """FoundationFL's aggregate ``(d,)``: the base rule on ``updates`` plus ``m`` copies of the
    highest-scoring row (Eqs. 4–7, module docstring). The paper's ``m`` is ``n // 2``.
    Needs ``n ≥ 2f+1`` and ``m ≥ 0``.

    Example: the extremes are (100, 3) and (1, −100); row 0 scores 99.02, the attacker row 3
    99.00, so two copies of (1, 1) join the trimmed mean (b = 1) of six rows.

        >>> import torch
        >>> from fedpoison.aggregators import foundationfl
        >>> x = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [100.0, -100.0]])
        >>> foundationfl(x, f=1, m=2).tolist()  # means of (1, 1, 2, 3) and (1, 1, 1, 2)
        [1.75, 1.25]
    """
    n = check_updates(updates, "foundationfl")
    check_foundationfl("foundationfl", n, f, m, base)
    star = updates[int(torch.argmax(foundational_scores(updates)))]
    rows = torch.cat([updates, star.expand(m, -1)])
    return trimmed_mean(rows, f) if base == "trimmed_mean" else median(rows)


def check_foundationfl(rule: str, n: int, f: int, m: int | None, base: str) -> None:
    """FoundationFL's preconditions: ``n ≥ 2f+1``, an integer ``m ≥ 0`` (or ``None`` for the
    paper's ``n // 2``), a known base rule."""
    if base not in ("trimmed_mean", "median"):
        raise ValueError(f"{rule}: base must be trimmed_mean|median, got {base!r}")
    if m is not None and (isinstance(m, bool) or not isinstance(m, int) or m < 0):
        raise ValueError(f"{rule}: m must be an integer ≥ 0 or null (n // 2), got {m!r}")
    check_f(rule, n, f, n >= 2 * f + 1, f"n ≥ 2f+1 = {2 * f + 1}")


@AGGREGATORS.register("foundationfl")
class FoundationFL(Aggregator):
    """FoundationFL (Fang et al. 2025, Algorithm 1; module docstring). No client is rejected as
    a whole, so weights are uniform 1/n.

    Args:
        m: synthetic updates added; ``None`` (default) = ``n // 2`` of the round's ``n``, the
            paper's ``n/2``.
        base: ``trimmed_mean`` (b = f per side over the n + m rows) | ``median``.
    """

    paper: ClassVar[str] = "Fang et al. 2025"
    requirement: ClassVar[str] = "n ≥ 2f+1"
    translation_equivariant: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    # A Byzantine row between two extreme Byzantine rows is the copied one (module docstring).
    bounded_influence: ClassVar[bool] = False

    def __init__(self, m: int | None = None, base: Base = "trimmed_mean") -> None:
        check_foundationfl(self.name, 1, 0, m, base)
        self.m = m
        self.base: Base = base

    def check(self, n: int, f: int) -> None:
        check_foundationfl(self.name, n, f, self.m, self.base)

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        n = updates.shape[0]
        m = n // 2 if self.m is None else self.m
        aggregate = foundationfl(updates, ctx.f, m=m, base=self.base)
        return AggregationResult(aggregate, uniform(n, updates))
