"""Privacy accounting with Opacus' accountants (RDP by default; PRV and GDP available).

A run's privacy loss is a composition of identical Gaussian mechanisms: ``steps`` releases
with noise multiplier ``z``, each on a subsample drawn with rate ``q``. Opacus' accountants
take that history as ``[(z, q, steps)]``; :func:`epsilon` builds it directly, so the number
is a pure function of the round count (a resumed run reports the same ε as an uninterrupted
one, with no accountant state to checkpoint).

Caveat (as in Opacus, TensorFlow Privacy and Flower): the amplification-by-subsampling bound
assumes Poisson sampling, while fedpoison samples a fixed number of clients (and DP-SGD
takes fixed-size shuffled batches). The reported ε is the standard approximation, not a proof.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ACCOUNTANTS = ("rdp", "prv", "gdp")


@dataclass(frozen=True)
class Release:
    """One kind of Gaussian release: noise multiplier ``z``, sampling rate ``q``, ``steps`` per
    round."""

    noise_multiplier: float
    sample_rate: float
    steps_per_round: int = 1


@functools.cache
def accountants() -> Callable[[str], Any]:
    """Opacus' ``create_accountant``, imported on first use: Opacus takes ~1.7 s to import, so
    only runs with DP pay it, and they pay it before round 1 (the mechanisms' ``check`` calls
    this), not inside round 1's time."""
    from opacus.accountants import create_accountant

    return create_accountant


def epsilon(release: Release, rounds: int, delta: float, accountant: str = "rdp") -> float:
    """ε after ``rounds`` rounds of ``release`` at ``delta`` (Opacus ``create_accountant``)."""
    if rounds < 1:
        return 0.0
    acct = accountants()(accountant)
    acct.history = [
        (release.noise_multiplier, release.sample_rate, release.steps_per_round * rounds)
    ]
    return float(acct.get_epsilon(delta=delta))
