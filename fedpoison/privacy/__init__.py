"""Differential privacy composed with robust aggregation (``privacy=`` config group).

- :class:`Privacy` — no DP (default, ``privacy=none``);
- :class:`CentralDP` — server-side clipping and noise around any defense, fixed or adaptive
  clipping;
- :class:`LocalDP` — each client clips and noises its own update (a ClientApp mod);
- :class:`DPSGD` — per-example clipping and noise in local training (Opacus).

ε per round comes from Flower's without-replacement RDP accountant (``central``, ``local``) or
Opacus' accountants (:mod:`fedpoison.privacy.accounting`).
"""

from fedpoison.privacy.base import DifferentialPrivacy, Privacy, Setting
from fedpoison.privacy.central import CentralDP
from fedpoison.privacy.dpsgd import DPSGD
from fedpoison.privacy.local import LocalDP

__all__ = ["DPSGD", "CentralDP", "DifferentialPrivacy", "LocalDP", "Privacy", "Setting"]
