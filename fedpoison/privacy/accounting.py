"""Privacy accounting: ε of a run's composed Gaussian releases, for the sampling it really does.

A run's privacy loss is a composition of identical subsampled Gaussian mechanisms: ``steps``
releases with noise multiplier ``z`` (noise std / clipping bound), each on a sample of
``sample_size`` of ``population`` units. :func:`epsilon` composes that history in one call, so
the number is a pure function of the round count (a resumed run reports the same ε as an
uninterrupted one, with no accountant state to checkpoint).

Accountants (``privacy.accountant``):

- ``rdp_wor`` (default of ``central`` and ``local``): Rényi DP of the Gaussian mechanism on a
  sample drawn *without replacement* of fixed size m from N (Wang, Balle & Kasiviswanathan,
  AISTATS 2019, "Subsampled Rényi differential privacy", Thm. 27): the number of Flower's
  ``flwr.serverapp.RdpAccountant`` with ``SamplingMethod.WITHOUT_REPLACEMENT``, computed with
  the library under it (Google's dp-accounting) so that one release's RDP is evaluated once
  per run rather than every round. This is how fedpoison samples clients: exactly
  ``clients_per_round`` of ``num_clients`` each round. The bound is for the *replace-one*
  neighbouring relation (N is public), under which swapping one unit's clipped contribution
  moves a sum by up to 2C, twice the add/remove sensitivity; dp-accounting's noise multiplier
  is relative to that sensitivity, so the release is charged ``z/2``.
- ``rdp``, ``prv``, ``gdp``: Opacus' accountants, which assume Poisson sampling with rate
  q = m/N and the add/remove relation (sensitivity C, multiplier z). For fixed-size sampling
  they are the customary approximation (as in Opacus, TF Privacy and Flower's examples), not a
  proof; ``dpsgd`` keeps ``rdp`` as its default (Opacus' own DP-SGD accounting).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

REPLACE_ONE_SENSITIVITY = 2.0
"""Sensitivity of a sum of C-clipped contributions under replace-one, in units of C."""


@dataclass(frozen=True)
class Release:
    """One kind of Gaussian release: noise multiplier ``z`` (noise std / clipping bound) on a
    sample of ``sample_size`` of ``population`` units, ``steps_per_round`` times per round."""

    noise_multiplier: float
    sample_size: int
    population: int
    steps_per_round: int = 1

    @property
    def sample_rate(self) -> float:
        """q = m/N, the Poisson rate Opacus' accountants take."""
        return self.sample_size / self.population


@functools.cache
def _opacus() -> Callable[[str], Any]:
    """Opacus' ``create_accountant``, imported on first use (~1.7 s)."""
    from opacus.accountants import create_accountant

    return create_accountant


@functools.cache
def _dp_accounting() -> Any:
    """Google's dp-accounting (Flower's ``RdpAccountant`` backend, ``flwr[dp]``); ``ValueError``
    with the install line when it is missing."""
    try:
        import dp_accounting
        import dp_accounting.rdp
    except ImportError:
        raise ValueError(
            "privacy.accountant=rdp_wor (the default of privacy=central and local) needs "
            "dp-accounting: pip install 'fedpoison[dp]' (or -e '.[dp]'); or choose "
            "privacy.accountant=rdp (Opacus, the Poisson-sampling bound)"
        ) from None
    return dp_accounting


@functools.cache
def _without_replacement_rdp(release: Release) -> tuple[Any, Any]:
    """Orders and RDP of one release (one evaluation costs ~0.4 s at m < N, so it is done once
    per run; k releases have k times the RDP)."""
    dp = _dp_accounting()
    accountant = dp.rdp.RdpAccountant(neighboring_relation=dp.NeighboringRelation.REPLACE_ONE)
    gaussian = dp.GaussianDpEvent(release.noise_multiplier / REPLACE_ONE_SENSITIVITY)
    accountant.compose(
        dp.SampledWithoutReplacementDpEvent(release.population, release.sample_size, gaussian)
    )
    return accountant.orders, accountant.rdp


def _opacus_epsilon(name: str, release: Release, steps: int, delta: float) -> float:
    acct = _opacus()(name)
    acct.history = [(release.noise_multiplier, release.sample_rate, steps)]
    return float(acct.get_epsilon(delta=delta))


def without_replacement_epsilon(release: Release, steps: int, delta: float) -> float:
    """ε after ``steps`` releases, sampling without replacement (replace-one, multiplier z/2):
    the event and the number of Flower's ``RdpAccountant`` with
    ``SamplingMethod.WITHOUT_REPLACEMENT`` composing it ``steps`` times."""
    orders, rdp = _without_replacement_rdp(release)
    dp = _dp_accounting()
    return float(dp.rdp.rdp_privacy_accountant.compute_epsilon(orders, steps * rdp, delta)[0])


_EPSILON: dict[str, Callable[[Release, int, float], float]] = {
    "rdp_wor": without_replacement_epsilon,
    "rdp": functools.partial(_opacus_epsilon, "rdp"),
    "prv": functools.partial(_opacus_epsilon, "prv"),
    "gdp": functools.partial(_opacus_epsilon, "gdp"),
}
ACCOUNTANTS = tuple(_EPSILON)
_BACKENDS: dict[str, Callable[[], Any]] = {
    "rdp_wor": _dp_accounting,
    "rdp": _opacus,
    "prv": _opacus,
    "gdp": _opacus,
}


def load(accountant: str) -> None:
    """Import ``accountant``'s library now (the mechanisms' ``check``, before round 1), so that
    round 1's time does not include it; ``ValueError`` with the install line when it is
    missing."""
    _BACKENDS[accountant]()


def epsilon(release: Release, rounds: int, delta: float, accountant: str = "rdp_wor") -> float:
    """ε after ``rounds`` rounds of ``release`` at ``delta`` with ``accountant``."""
    if rounds < 1:
        return 0.0
    return _EPSILON[accountant](release, release.steps_per_round * rounds, delta)
