"""MDA — minimum-diameter averaging (El Mhamdi, Guerraoui, Guirguis, Hoang & Rouault, PODC 2020,
"Genuinely Distributed Byzantine Machine Learning"; REFERENCES D19).

``S* = argmin_{|S| = n−f} max_{i,j∈S} ‖g_i − g_j‖`` and ``MDA = (1/(n−f)) Σ_{i∈S*} g_i``.
Requires ``n ≥ 2f+1``; ``f = 0`` gives the mean (the official ``brute.py`` requires f ≥ 1).
Squared distances (same argmin), all from ONE centred float64 Gram matrix
(:class:`PairwiseSquaredDistances`). Ties → the lexicographically first minimal subset in
``itertools.combinations`` order, as in all three peer codes (strict ``<``); diameters equal up
to their rounding bound count as ties.

The rule is exact: it enumerates the ``C(n, f)`` subsets, vectorised over blocks of them. A
subset's diameter is its largest surviving pair: with the pairs sorted by distance, it is the
first pair that avoids the ``f`` excluded rows, found among the top ``f·(n−1)+1`` pairs. What
the peers do for large ``n`` (none approximates): ByzFL materialises
``list(itertools.combinations(...))`` with no guard (several GB at ``C(30, 10) ≈ 3·10⁷``);
ByzantineMomentum iterates lazily (optionally in native C++); byzpy splits the enumeration over
an actor pool. Here ``max_subsets`` bounds ``C(n, f)``, and above it :meth:`MDA.check` fails
before round 1 naming the count and a workable ``n``/``f``.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch

from fedpoison.aggregators._common import check_f, check_updates
from fedpoison.aggregators._linalg import PairwiseSquaredDistances
from fedpoison.aggregators._subsets import (
    MAX_SUBSETS,
    check_budget,
    complements,
    first_lowest,
    kept_mask,
    unrank,
)
from fedpoison.aggregators.base import AGGREGATORS, AggregationResult, Aggregator, RoundContext


def check_subset_rule(rule: str, n: int, f: int, max_subsets: int) -> None:
    """MDA's and SMEA's preconditions: ``n ≥ 2f+1`` and ``C(n, f) ≤ max_subsets``."""
    check_f(rule, n, f, n >= 2 * f + 1, f"n ≥ 2f+1 = {2 * f + 1}")
    check_budget(rule, n, f, max_subsets)


def selection_weights(updates: torch.Tensor, kept: list[int]) -> torch.Tensor:
    """Weights ``(n,)``: ``1/|kept|`` on the kept rows, 0 elsewhere."""
    weights = torch.zeros(updates.shape[0], dtype=updates.dtype, device=updates.device)
    weights[kept] = 1.0 / len(kept)
    return weights


def mda_subset(updates: torch.Tensor, f: int, max_subsets: int = MAX_SUBSETS) -> list[int]:
    """The rows (ascending) of the minimum-diameter ``(n−f)``-subset."""
    n = check_updates(updates, "mda")
    check_subset_rule("mda", n, f, max_subsets)
    if f == 0 or n < 2:
        return list(range(n))
    pd = PairwiseSquaredDistances(updates)
    a, b = torch.triu_indices(n, n, 1, device=updates.device)
    dist, tol = pd.scaled[a, b], pd.tolerance[a, b]
    order = torch.sort(dist, descending=True, stable=True).indices[: f * (n - 1) + 1]
    a, b, dist, tol = a[order], b[order], dist[order], tol[order]
    scores, errors = [], []
    for excluded in complements(n, f, updates.device):
        kept = kept_mask(excluded, n)
        first = (kept[:, a] & kept[:, b]).to(torch.uint8).argmax(dim=1)  # largest kept pair
        scores.append(dist[first])
        errors.append(tol[first])
    best = first_lowest(torch.cat(scores), torch.cat(errors))
    out = set(unrank(best, n, f))
    return [i for i in range(n) if i not in out]


def mda(updates: torch.Tensor, f: int, max_subsets: int = MAX_SUBSETS) -> torch.Tensor:
    """Mean ``(d,)`` of the ``n−f`` rows of smallest diameter (ties → lexicographically
    first subset); ``ValueError`` when ``C(n, f) > max_subsets``.

    Example: dropping the outlier leaves diameter √2.

        >>> import torch
        >>> from fedpoison.aggregators import mda
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [10.0, 10.0]])
        >>> [round(v, 4) for v in mda(x, f=1).tolist()]
        [0.3333, 0.3333]
    """
    kept = mda_subset(updates, f, max_subsets)
    return selection_weights(updates, kept) @ updates


class SubsetRule(Aggregator):
    """A rule that averages the best of the ``C(n, f)`` subsets of ``n−f`` rows (MDA, SMEA);
    weights are ``1/(n−f)`` on the selected subset, 0 on the rejected rows.

    Args:
        max_subsets: the largest ``C(n, f)`` enumerated per round; above it the run is
            refused before round 1.
    """

    requirement: ClassVar[str] = "n ≥ 2f+1, C(n, f) ≤ max_subsets (10⁶)"
    translation_equivariant: ClassVar[bool] = True
    scale_equivariant: ClassVar[bool] = True
    rejects_far_rows: ClassVar[bool] = True
    aggregate_is_weighted_sum: ClassVar[bool] = True

    def __init__(self, max_subsets: int = MAX_SUBSETS) -> None:
        if max_subsets < 1:
            raise ValueError(f"{self.name}: max_subsets must be ≥ 1, got {max_subsets}")
        self.max_subsets = max_subsets

    def check(self, n: int, f: int) -> None:
        check_subset_rule(self.name, n, f, self.max_subsets)

    @abstractmethod
    def subset(self, updates: torch.Tensor, f: int) -> list[int]:
        """The selected rows, ascending."""

    def aggregate(self, updates: torch.Tensor, ctx: RoundContext) -> AggregationResult:
        weights = selection_weights(updates, self.subset(updates, ctx.f))
        return AggregationResult(weights @ updates, weights)


@AGGREGATORS.register("mda")
class MDA(SubsetRule):
    """MDA (see :class:`SubsetRule` for weights and ``max_subsets``).

    Not permutation invariant: ties between subsets are generic (the diameter is set by one
    pair, so every subset that keeps that pair ties) and go to the lexicographically first
    subset, as in all three reference codes (REFERENCES D19); reordering the rows can pick
    another of the tied subsets, hence another mean.
    """

    paper: ClassVar[str] = "El Mhamdi et al. 2020"
    permutation_invariant: ClassVar[bool] = False

    def subset(self, updates: torch.Tensor, f: int) -> list[int]:
        return mda_subset(updates, f, self.max_subsets)
