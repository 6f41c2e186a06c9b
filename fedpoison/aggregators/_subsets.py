"""Exact enumeration of the ``(n−f)``-subsets of the rows, shared by MDA (REFERENCES D19) and
SMEA (D20), with the budget guard that refuses an impossible enumeration before round 1.

A subset ``S`` (``|S| = n−f``) is enumerated through its complement ``E`` (``|E| = f``): the
``C(n, f)`` sets ``E`` are generated in lexicographic order, in blocks of at most
:data:`BLOCK` rows, as an ``(m, f)`` index tensor. Lexicographic order on ``S`` is the
*reverse* of that on ``E`` (the first element where two ``S`` differ is in the smaller ``S``
and in the other ``E``), which is how a rule maps "ties → the lexicographically first ``S``"
(the order of ``itertools.combinations`` that every peer uses) onto this enumeration.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch

MAX_SUBSETS = 1_000_000
"""Default budget of subsets a rule may enumerate per round (REFERENCES D19 suggests 10⁶)."""

BLOCK = 1 << 14
"""Largest block of complements generated at once (the per-block work is ``BLOCK`` × a few
``n``-sized rows)."""


def check_budget(rule: str, n: int, f: int, max_subsets: int) -> None:
    """Raise ``ValueError`` (one line: the subset count and a workable ``n``/``f``) when
    ``C(n, f)`` exceeds ``max_subsets``; ``n ≥ 2f+1`` is assumed already checked."""
    count = math.comb(n, f)
    if count <= max_subsets:
        return
    fs = [g for g in range(f) if math.comb(n, g) <= max_subsets]
    hint = f"f ≤ {fs[-1]} for n={n}" if fs else f"a smaller f for n={n}"
    ns = [m for m in range(2 * f + 1, n) if math.comb(m, f) <= max_subsets]
    if ns:
        hint += f", or n ≤ {ns[-1]} for f={f}"
    raise ValueError(
        f"{rule}: enumerates C(n, f) = C({n}, {f}) = {count:,} subsets, more than "
        f"max_subsets = {max_subsets:,}; got n={n}, f={f}: use {hint}, or raise max_subsets"
    )


def _lex(n: int, r: int, device: torch.device) -> torch.Tensor:
    """All ``r``-subsets of ``range(n)`` in lexicographic order, ``(C(n, r), r)``, built one
    position at a time (each prefix extended by every admissible larger element)."""
    combos = torch.zeros((1, 0), dtype=torch.int64, device=device)
    for position in range(r):
        last = combos[:, -1] if position else torch.full((1,), -1, device=device)
        high = n - r + position  # the largest element allowed at this position
        counts = (high - last).clamp_min(0)
        rows = torch.repeat_interleave(torch.arange(len(combos), device=device), counts)
        start = torch.cumsum(counts, 0) - counts
        offset = torch.arange(len(rows), device=device) - start[rows]
        combos = torch.cat([combos[rows], (last[rows] + 1 + offset)[:, None]], dim=1)
    return combos


def complements(n: int, f: int, device: torch.device) -> Iterator[torch.Tensor]:
    """The ``f``-subsets of ``range(n)`` in lexicographic order, as ``(m, f)`` blocks."""
    if math.comb(n, f) <= BLOCK or f == 0:
        yield _lex(n, f, device)
        return
    for first in range(n - f + 1):
        for rest in complements(n - first - 1, f - 1, device):
            head = torch.full((len(rest), 1), first, dtype=torch.int64, device=device)
            yield torch.cat([head, rest + first + 1], dim=1)


def unrank(index: int, n: int, r: int) -> list[int]:
    """The ``index``-th ``r``-subset of ``range(n)`` in lexicographic order."""
    out, low = [], 0
    for position in range(r):
        for element in range(low, n):
            below = math.comb(n - element - 1, r - position - 1)  # subsets starting here
            if index < below:
                out.append(element)
                low = element + 1
                break
            index -= below
    return out


def kept_mask(excluded: torch.Tensor, n: int) -> torch.Tensor:
    """Boolean ``(m, n)``: True where a row is in ``S`` (not in the complement ``E``)."""
    mask = torch.ones((len(excluded), n), dtype=torch.bool, device=excluded.device)
    return mask.scatter_(1, excluded, False)


def first_lowest(scores: torch.Tensor, errors: torch.Tensor) -> int:
    """Index (in the enumeration order of :func:`complements`) of the subset ``S`` with the
    lowest score; scores equal up to their rounding ``errors`` are ties, which go to the
    lexicographically first ``S``, i.e. the LAST complement."""
    t = int(torch.argmin(scores))
    tied = (scores - scores[t]).abs() <= errors + errors[t]
    return int(tied.nonzero()[-1, 0])
