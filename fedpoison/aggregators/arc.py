"""ARC — adaptive robust clipping, a pre-aggregator (Allouah, Guerraoui, Gupta, Jellouli, Rizk &
Stephan, ICLR 2025, "The Vital Role of Gradient Clipping in Byzantine-Resilient Distributed
Learning", arXiv:2405.14432; ByzFL's ``ARC``, the authors' group; REFERENCES D23).

``k = ⌊2·(f/n)·(n − f)⌋``; if ``k = 0`` the rows are unchanged. Otherwise ``C`` = the norm of the
``(k+1)``-th largest row and each of the ``k`` largest rows becomes ``g_i·C/‖g_i‖``; the others
are unchanged. Equivalently every row is clipped to norm ``C`` (rows tied with ``C`` have factor
1 either way, so ties in norm cannot change the output). Returns ``n`` rows and the diagonal
mixing matrix of the factors, like ``clip``.

Conventions: ``k`` in integer arithmetic, ``(2·f·(n−f)) // n``; ByzFL's and byzpy's
``int((2*f/n)*(n-f))`` rounds down one too many at, e.g., ``(n, f) = (242, 33)`` (56 instead of
57). ByzFL assigns into its input (REFERENCES Conventions 10); this never does. Scale-free, so
it keeps its meaning under any momentum formula (Conventions 9). ByzFL's docstring formula is
garbled; this follows its code.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from fedpoison.aggregators._common import check_f, check_shape, check_updates
from fedpoison.aggregators._linalg import row_norms
from fedpoison.aggregators.base import RoundContext
from fedpoison.aggregators.pre import PRE_AGGREGATORS, PreAggregator
from fedpoison.finite import all_finite


def arc_clipped(n: int, f: int) -> int:
    """``k = ⌊2f(n−f)/n⌋``, the number of rows ARC clips (exact integer arithmetic)."""
    return (2 * f * (n - f)) // n


def arc_factors(updates: torch.Tensor, f: int) -> torch.Tensor:
    """Per-row factors ``(n,)`` in the updates' dtype: ``C/‖g_i‖`` for rows above ``C``, else 1.

    The row norms double as the finiteness check (:func:`row_norms` is finite for finite rows,
    and a NaN/Inf entry makes its row's norm non-finite), so the rows are read once.
    """
    n = check_shape(updates, "arc")
    check_f("arc", n, f, f <= n, f"f ≤ n = {n}")
    norms = row_norms(updates)
    if not all_finite(norms):
        check_updates(updates, "arc")  # raises, naming the rows
    k = arc_clipped(n, f)
    if k == 0:
        return torch.ones(n, dtype=updates.dtype, device=updates.device)
    c = torch.sort(norms, descending=True).values[k]
    factors = torch.where(norms > c, c / norms.clamp_min(torch.finfo(norms.dtype).tiny), 1.0)
    return factors.to(updates.dtype)


def arc(updates: torch.Tensor, f: int) -> torch.Tensor:
    """The ``(n, d)`` rows after adaptive robust clipping (a new tensor).

    Example (ByzFL's golden): k = 1, so the largest row is clipped to ‖(4, 5, 6)‖ = √77.

        >>> import torch
        >>> from fedpoison.aggregators.arc import arc
        >>> x = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
        >>> [round(v, 5) for v in arc(x, f=1)[2].tolist()]
        [4.41004, 5.04005, 5.67005]
    """
    return updates * arc_factors(updates, f)[:, None]


@PRE_AGGREGATORS.register("arc")
class ARC(PreAggregator):
    """ARC: the ``⌊2f(n−f)/n⌋`` largest rows clipped to the next row's norm (diagonal mixing)."""

    paper: ClassVar[str] = "Allouah et al. 2025 (ICLR)"

    def check(self, n: int, f: int) -> None:
        check_f(self.name, n, f, f <= n, f"f ≤ n = {n}")

    def mix(self, updates: torch.Tensor, ctx: RoundContext) -> tuple[torch.Tensor, torch.Tensor]:
        factors = arc_factors(updates, ctx.f)
        return updates * factors[:, None], torch.diag(factors)
