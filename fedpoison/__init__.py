"""fedpoison: federated-learning poisoning attacks and robust aggregation on Flower.

The library API, for a Flower app of your own (README: "Use fedpoison in your own Flower
app"):

- :class:`RobustStrategy` — a Flower ``Strategy`` aggregating with a robust rule from
  :mod:`fedpoison.aggregators` (``Krum()``, ``TrimmedMean()``, ``FLTrust()``, ...).
- :class:`Adversary` — wraps any Flower ``Strategy`` as the colluding adversary running an
  update attack from :mod:`fedpoison.attacks` (``ALIE()``, ``IPM()``, ``MinMax()``, ...).
- :class:`RootTrainer` — FLTrust's server update from the server's own root data.
- :class:`LocalTraining` — the local SGD procedure (the root trainer's, the CLI clients').
- :class:`ReplyPolicy` — what a ``RobustStrategy`` does with unusable replies.
- :class:`RoundRecorder` — writes a run directory ``fedpoison-report`` reads, from any app.
- :func:`poison_mod` — a per-client update attack or reply fault as a Flower ClientApp mod;
  :func:`poison_data` and :class:`PoisonedDataset` — data attacks on your own data.

They are imported on first use, so that importing a light module (``fedpoison.report``,
``fedpoison.config``) does not import torch or Flower.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedpoison.clients.data import PoisonedDataset, poison_data
    from fedpoison.clients.mods import poison_mod
    from fedpoison.recorder import RoundRecorder
    from fedpoison.strategies.fltrust_root import RootTrainer
    from fedpoison.strategies.robust import RobustStrategy
    from fedpoison.strategies.round import ReplyPolicy
    from fedpoison.strategies.wrapper import Adversary
    from fedpoison.training.local import LocalTraining

__version__ = "0.1.0"

_PUBLIC = {
    "Adversary": "fedpoison.strategies.wrapper",
    "PoisonedDataset": "fedpoison.clients.data",
    "LocalTraining": "fedpoison.training.local",
    "ReplyPolicy": "fedpoison.strategies.round",
    "RobustStrategy": "fedpoison.strategies.robust",
    "RootTrainer": "fedpoison.strategies.fltrust_root",
    "RoundRecorder": "fedpoison.recorder",
    "poison_data": "fedpoison.clients.data",
    "poison_mod": "fedpoison.clients.mods",
}
__all__ = [
    "Adversary",
    "PoisonedDataset",
    "LocalTraining",
    "ReplyPolicy",
    "RobustStrategy",
    "RootTrainer",
    "RoundRecorder",
    "__version__",
    "poison_data",
    "poison_mod",
]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(importlib.import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'fedpoison' has no attribute {name!r}")
