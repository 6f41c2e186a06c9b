"""FoundationFL (Fang, Nabavirazavi, Liu, Sun, Iyengar, Yang, NDSS 2025, "Do We Really Need to
Design New Byzantine-robust Aggregation Rules?", arXiv:2501.17381).

[UNVERIFIED] The abstract says the server "generat[es] synthetic updates after receiving local
model updates", then applies a foundational rule (trimmed mean or median) to the clients'
updates together with the synthetic ones. The algorithm's exact text was not available; what
is implemented is the one third-party port found, consistent with recollection:

1. coordinate-wise extremes ``g_max[k] = max_i Δ_{i,k}`` and ``g_min[k] = min_i Δ_{i,k}``;
2. scores ``s_i = min(‖Δ_i − g_max‖, ‖Δ_i − g_min‖)`` (L2);
3. ``i* = argmax_i s_i`` (first index on ties), the update farthest from both extremes;
4. ``m`` synthetic updates, all equal to ``Δ_{i*}``;
5. the base rule on the ``n + m`` rows: trimmed mean with ``b = f`` per side (the paper's
   setting uses the true ``f``, docs/conventions.md §C5) or the median (even → midpoint).

Still to check against the paper: min or sum in the score, exact copies or not, the default
``m`` (the port's 2 is the class default here, not a paper value), ``b`` on ``n + m`` rows,
and tie-breaking. Consequence of this definition: a Byzantine row far from both extreme
vectors scores highest and is copied ``m`` times, which the trim does not remove, so influence
is not bounded (the class declares ``bounded_influence = False``). Two such rows: one placed
between two extreme Byzantine rows, and IPM's ``−τ·mean`` whenever the mean has coordinates of
both signs (it is the minimum on some coordinates and the maximum on the others); Optimal-IPM
then makes a digits run diverge. A definition the paper's robustness claims would survive is
likely different; verify before relying on this rule.
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
    """``s_i = min(‖Δ_i − g_max‖, ‖Δ_i − g_min‖)`` ``(n,)`` in the work dtype."""
    to_max = row_norms(updates - updates.max(dim=0).values)
    to_min = row_norms(updates - updates.min(dim=0).values)
    return torch.minimum(to_max, to_min)


def foundationfl(
    updates: torch.Tensor, f: int, *, m: int, base: Base = "trimmed_mean"
) -> torch.Tensor:
    """FoundationFL's aggregate ``(d,)``: the base rule on ``updates`` plus ``m`` copies of the
    highest-scoring row (module docstring). ``m`` has no default (the paper's is not known).
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


def check_foundationfl(rule: str, n: int, f: int, m: int, base: str) -> None:
    """FoundationFL's preconditions: ``n ≥ 2f+1``, an integer ``m ≥ 0``, a known base rule."""
    if base not in ("trimmed_mean", "median"):
        raise ValueError(f"{rule}: base must be trimmed_mean|median, got {base!r}")
    if isinstance(m, bool) or not isinstance(m, int) or m < 0:
        raise ValueError(f"{rule}: m must be an integer ≥ 0, got {m!r}")
    check_f(rule, n, f, n >= 2 * f + 1, f"n ≥ 2f+1 = {2 * f + 1}")


@AGGREGATORS.register("foundationfl")
class FoundationFL(Aggregator):
    """FoundationFL [UNVERIFIED definition, see the module docstring]. No client is rejected as
    a whole, so weights are uniform 1/n.

    Args:
        m: synthetic updates added (the port's default 2; not a paper value).
        base: ``trimmed_mean`` (b = f per side over the n + m rows) | ``median``.
    """

    paper: ClassVar[str] = "Fang et al. 2025 (definition unverified)"
    requirement: ClassVar[str] = "n ≥ 2f+1"
    translation_equivariant: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    # A Byzantine row between two extreme Byzantine rows is the copied one (module docstring).
    bounded_influence: ClassVar[bool] = False

    def __init__(self, m: int = 2, base: Base = "trimmed_mean") -> None:
        check_foundationfl(self.name, 1, 0, m, base)
        self.m = m
        self.base: Base = base

    def check(self, n: int, f: int) -> None:
        check_foundationfl(self.name, n, f, self.m, self.base)

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        aggregate = foundationfl(updates, ctx.f, m=self.m, base=self.base)
        return AggregationResult(aggregate, uniform(updates.shape[0], updates))
