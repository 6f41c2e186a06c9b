"""Shared helpers of the rules: input checks, precondition errors, tie-aware selection and
the column sort. Overflow-safe linear algebra lives in :mod:`._linalg`.

Every rule calls :func:`check_updates` first, so a malformed or non-finite matrix fails with
one message format: ``"<rule>: updates contain NaN/Inf in rows [..]"``.
"""

from __future__ import annotations

from typing import TypeVar

import torch

from fedpoison.finite import all_finite, finite_rows

T = TypeVar("T")


def check_shape(updates: torch.Tensor, rule: str) -> int:
    """Validate an ``(n, d)`` floating matrix with ``n ≥ 1``; return ``n``."""
    if updates.ndim != 2 or not updates.is_floating_point():
        raise ValueError(
            f"{rule}: updates must be a 2-D floating tensor (n, d), "
            f"got shape {tuple(updates.shape)} and dtype {updates.dtype}"
        )
    if updates.shape[0] < 1:
        raise ValueError(f"{rule}: needs n ≥ 1 rows, got n=0")
    return int(updates.shape[0])


def check_updates(updates: torch.Tensor, rule: str) -> int:
    """Validate an ``(n, d)`` floating matrix with finite entries; return ``n``."""
    n = check_shape(updates, rule)
    if all_finite(updates):
        return n
    rows = (~finite_rows(updates)).nonzero().flatten().tolist()
    raise ValueError(f"{rule}: updates contain NaN/Inf in rows {rows}")


def checked(result: torch.Tensor, updates: torch.Tensor, rule: str) -> torch.Tensor:
    """``result``, computed from ``updates`` (already through :func:`check_shape`) by sums
    that carry any NaN/Inf entry into it: :func:`check_updates` runs only when ``result`` is
    not finite, which spares the common case a pass over the data."""
    if not all_finite(result):
        check_updates(updates, rule)
    return result


def check_f(rule: str, n: int, f: int, ok: bool, bound: str) -> None:
    """Raise ``ValueError`` naming ``rule``, ``n``, ``f`` and ``bound`` unless ``ok``."""
    if f < 0:
        raise ValueError(f"{rule}: f must be ≥ 0, got n={n}, f={f}")
    if not ok:
        raise ValueError(f"{rule}: needs {bound}, got n={n}, f={f}")


def _boundary(
    scores: torch.Tensor, m: int, errors: torch.Tensor | float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(sure, tied)``: the scores surely below the ``m``-th lowest, and those whose error
    interval overlaps its own (the ``m``-th lowest included)."""
    errors = torch.as_tensor(errors, dtype=scores.dtype, device=scores.device).expand_as(scores)
    t = torch.sort(scores, stable=True).indices[m - 1]
    slack = errors + errors[t]
    return scores < scores[t] - slack, (scores - scores[t]).abs() <= slack


def lowest(scores: torch.Tensor, m: int, errors: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Boolean mask of the ``m`` lowest ``scores``. A score whose error interval (``errors``,
    per score or one for all) overlaps that of the ``m``-th lowest is a tie; ties are broken
    by the lowest index."""
    sure, tied = _boundary(scores, m, errors)
    need = m - int(sure.sum())
    return sure | (tied & (torch.cumsum(tied.to(torch.int64), 0) <= need))


def undecided(scores: torch.Tensor, m: int, errors: torch.Tensor | float) -> torch.Tensor:
    """Boolean mask of the scores whose membership in the ``m`` lowest a more precise
    computation could change: the ties with the ``m``-th lowest (see :func:`lowest`) when
    there are more of them than places left; none otherwise."""
    sure, tied = _boundary(scores, m, errors)
    return tied if int(tied.sum()) > m - int(sure.sum()) else torch.zeros_like(tied)


def sort_rows(x: torch.Tensor, owned: bool = False) -> torch.Tensor:
    """Each column sorted ascending (a sort along dim 0); a new tensor unless ``owned``
    (``x`` is a temporary the caller lets us sort in place).

    On the CPU this goes through numpy's SIMD sort, several times faster than
    ``torch.sort`` along dim 0 for the short columns an update matrix has.
    """
    if x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64):
        a = x.detach().numpy() if owned else x.detach().numpy().copy()
        a.sort(axis=0)
        return torch.from_numpy(a)
    return torch.sort(x, dim=0).values


def require(value: T | None, rule: str, what: str) -> T:
    """``value``, or ``ValueError`` when a rule's required context field is missing."""
    if value is None:
        raise ValueError(f"{rule}: needs {what}")
    return value


def uniform(n: int, like: torch.Tensor) -> torch.Tensor:
    """Weights ``1/n`` for rules that reject no client as a whole."""
    return torch.full((n,), 1.0 / n, dtype=like.dtype, device=like.device)
