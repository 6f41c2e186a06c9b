"""Shared fixtures (helpers live in fedpoison_testing.py, importable from every test)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from fedpoison_testing import TINY, run_simulation
from hypothesis import settings

# CI (CI=true) replays the same Hypothesis examples every run; local runs keep exploring.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture
def simulate(tmp_path: Path):
    """``simulate(overrides, name="run")`` runs a tiny simulation under ``tmp_path/name``."""

    def _run(overrides: list[str], name: str = "run") -> dict[str, Any]:
        return run_simulation([*TINY, *overrides], tmp_path / name)

    return _run
