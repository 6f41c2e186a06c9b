"""Hydra config tree shipped with the package (so `fedpoison` runs from any directory)."""

from pathlib import Path

CONF_DIR = Path(__file__).resolve().parent
"""The directory of ``config.yaml`` and the config groups."""
