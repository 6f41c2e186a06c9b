"""The Flower ClientApp every engine runs (:mod:`fedpoison.clients.app`), and the pieces a
user's own ClientApp takes to behave maliciously: :func:`poison_mod` (update attacks and
reply faults, a Flower ``Mod``), :func:`poison_data` and :class:`PoisonedDataset` (data
attacks). fedpoison's ClientApp runs its reply attacks and data poisoning through them."""

from fedpoison.clients.data import PoisonedDataset, poison_data
from fedpoison.clients.mods import PoisonMod, poison_mod

__all__ = ["PoisonMod", "PoisonedDataset", "poison_data", "poison_mod"]
