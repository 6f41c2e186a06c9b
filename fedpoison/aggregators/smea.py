"""SMEA — smallest maximum eigenvalue averaging (Allouah, Guerraoui, Gupta, Pinot & Stephan,
ICML 2023, "On the Privacy-Robustness-Utility Trilemma in Distributed Learning"; REFERENCES
D20).

``S* = argmin_{|S| = n−f} λ_max(Σ_S)`` with ``Σ_S = (1/|S|) Σ_{i∈S} (g_i − μ_S)(g_i − μ_S)ᵀ``,
and ``SMEA = μ_{S*}``. Requires ``n ≥ 2f+1``. The eigenvalue is exact: the nonzero spectrum of
``Σ_S`` is that of the ``|S|×|S|`` centred Gram matrix ``H G_S H / |S|``, so one centred
float64 Gram matrix of all rows (:func:`gram`) serves every subset, and each subset costs one
small symmetric eigenproblem (batched ``eigvalsh``), never a pass over ``d``. Ties (equal up to
a rounding bound) → the lexicographically first subset.

Peers: byzpy uses the same exact ``eigvalsh`` (ties → the first subset found). ByzFL takes one
power-iteration step from an unseeded random vector and ranks by ``‖Σ_S v‖`` (REFERENCES
Conventions 7): a random, approximate selection that is not offered here. Like MDA (D19) the
rule enumerates all ``C(n, f)`` subsets; ``max_subsets`` bounds that count and :meth:`SMEA.check`
refuses a larger one before round 1 (ByzFL materialises every subset with no guard; byzpy
splits the enumeration over actors).
"""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.aggregators._common import check_updates
from fedpoison.aggregators._linalg import gram
from fedpoison.aggregators._subsets import (
    MAX_SUBSETS,
    complements,
    first_lowest,
    kept_mask,
    unrank,
)
from fedpoison.aggregators.base import AGGREGATORS
from fedpoison.aggregators.mda import SubsetRule, check_subset_rule, selection_weights


def subset_eigenvalues(g: torch.Tensor, kept: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(λ, bound)`` per subset (rows of the boolean ``kept`` ``(m, n)``): the largest
    eigenvalue of ``H G_S H`` (``|S|`` times ``λ_max(Σ_S)``) and a bound on its rounding."""
    k = int(kept[0].sum())
    rows = kept.nonzero()[:, 1].view(len(kept), k)  # ascending rows of each subset
    sub = g[rows[:, :, None], rows[:, None, :]]
    sub = sub - sub.mean(dim=1, keepdim=True)
    sub = sub - sub.mean(dim=2, keepdim=True)
    values = torch.linalg.eigvalsh(sub)[:, -1]
    trace = sub.diagonal(dim1=1, dim2=2).sum(dim=1).clamp_min(0.0)
    return values, 64.0 * torch.finfo(g.dtype).eps * k * trace


def smea_subset(updates: torch.Tensor, f: int, max_subsets: int = MAX_SUBSETS) -> list[int]:
    """The rows (ascending) of the ``(n−f)``-subset of smallest ``λ_max`` of its covariance."""
    n = check_updates(updates, "smea")
    check_subset_rule("smea", n, f, max_subsets)
    if f == 0 or n < 2:
        return list(range(n))
    g, _ = gram(updates, centre=True)
    # Gram rounding: about ε·√d per entry relative to the squared norms, k entries per row
    slack = 8.0 * torch.finfo(g.dtype).eps * max(updates.shape[1], 1) ** 0.5 * (n - f)
    slack *= float(g.diagonal().sum())
    scores, errors = [], []
    for excluded in complements(n, f, updates.device):
        values, bound = subset_eigenvalues(g, kept_mask(excluded, n))
        scores.append(values)
        errors.append(bound + slack)
    best = first_lowest(torch.cat(scores), torch.cat(errors))
    out = set(unrank(best, n, f))
    return [i for i in range(n) if i not in out]


def smea(updates: torch.Tensor, f: int, max_subsets: int = MAX_SUBSETS) -> torch.Tensor:
    """Mean ``(d,)`` of the ``n−f`` rows whose covariance has the smallest top eigenvalue
    (exact; ties → lexicographically first subset); ``ValueError`` when
    ``C(n, f) > max_subsets``.

    Example: λ_max is 1/3 without the outlier and above 40 with it (REFERENCES D20).

        >>> import torch
        >>> from fedpoison.aggregators import smea
        >>> x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [10.0, 10.0]])
        >>> [round(v, 4) for v in smea(x, f=1).tolist()]
        [0.3333, 0.3333]
    """
    kept = smea_subset(updates, f, max_subsets)
    return selection_weights(updates, kept) @ updates


@AGGREGATORS.register("smea")
class SMEA(SubsetRule):
    """SMEA (see :class:`~fedpoison.aggregators.mda.SubsetRule` for weights and
    ``max_subsets``)."""

    paper: ClassVar[str] = "Allouah et al. 2023 (ICML)"

    def subset(self, updates: torch.Tensor, f: int) -> list[int]:
        return smea_subset(updates, f, self.max_subsets)
