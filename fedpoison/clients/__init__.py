"""The Flower ClientApp every engine runs (:mod:`fedpoison.clients.app`), and the pieces a
user's own ClientApp takes to behave maliciously: :func:`poison_mod` (update attacks and
reply faults, a Flower ``Mod``), :func:`poison_data` and :class:`PoisonedDataset` (data
attacks) and :func:`malicious_round` (data attacks that also shape the malicious training:
PGD, Neurotoxin, edge-case). fedpoison's ClientApp runs its reply attacks and data
poisoning through them."""

from fedpoison.clients.data import MaliciousRound, PoisonedDataset, malicious_round, poison_data
from fedpoison.clients.mods import PoisonMod, poison_mod

__all__ = [
    "MaliciousRound",
    "PoisonMod",
    "PoisonedDataset",
    "malicious_round",
    "poison_data",
    "poison_mod",
]
