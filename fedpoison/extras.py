"""Optional integrations (``pip install 'fedpoison[hf]'``, ``[wandb]``, ``[mlflow]``): import
them on use, and say how to install them when they are missing.

A missing extra is a :class:`MissingExtra` (a ``ValueError``), which the run turns into its
one-line configuration error before round 1 (exit 2), with the install line.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtra(ValueError):
    """An optional package that a chosen integration needs is not installed."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """``import module``; :class:`MissingExtra` naming ``feature`` and the install line for
    fedpoison's ``extra`` when it is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(
            f"{feature} needs fedpoison's {extra!r} extra: pip install 'fedpoison[{extra}]' "
            f"({exc.name or module} is not installed)"
        ) from None
