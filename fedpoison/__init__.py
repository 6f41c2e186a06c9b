"""fedpoison: federated-learning poisoning attacks and robust aggregation on Flower.

``fedpoison.Adversary`` (:class:`fedpoison.strategies.wrapper.Adversary`) wraps any Flower
strategy as the colluding adversary. It is imported on first use, so that importing a light
module (``fedpoison.report``, ``fedpoison.config``) does not import torch or Flower.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fedpoison.strategies.wrapper import Adversary

__version__ = "0.1.0"
__all__ = ["Adversary", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Adversary":
        from fedpoison.strategies.wrapper import Adversary

        return Adversary
    raise AttributeError(f"module 'fedpoison' has no attribute {name!r}")
