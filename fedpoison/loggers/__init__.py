"""Optional experiment loggers (``logger=tensorboard|wandb|mlflow``, several at once with
``logger=[tensorboard,mlflow]``); off by default.

Every logger follows :class:`Logger`: :meth:`~Logger.start` once the run is prepared (before
round 1) with the resolved config and the run's choices, :meth:`~Logger.log_round` with every
round's record (the dict that goes to ``results.json``), :meth:`~Logger.finish` with the
complete ``results.json`` document, and :meth:`~Logger.close` always. Each logger's config is
``conf/logger/<name>.yaml`` under its own package ``logger.<name>``, so several compose side
by side. A logger whose extra is not installed fails in :func:`build_loggers`, before round 1,
with the install line.
"""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from fedpoison.config import ConfigError, first_line
from fedpoison.loggers.base import Logger, RunInfo, hyperparameters, numeric
from fedpoison.loggers.tensorboard import TensorBoardLogger

__all__ = [
    "Logger",
    "RunInfo",
    "TensorBoardLogger",
    "build_loggers",
    "hyperparameters",
    "numeric",
]


def build_loggers(node: DictConfig | None) -> list[Logger]:
    """The loggers of the ``logger`` config node (one per child config; a node with its own
    ``_target_`` is one logger); :class:`ConfigError` with the cause's first line."""
    if not node:
        return []
    children: list[Any] = [node] if "_target_" in node else list(node.values())
    try:
        return [instantiate(child) for child in children]
    except (InstantiationException, ValueError, TypeError) as exc:
        cause: BaseException = exc
        while cause.__cause__ is not None:
            cause = cause.__cause__
        raise ConfigError(first_line(cause)) from exc
