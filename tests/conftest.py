"""Shared fixtures (helpers live in fedpoison_testing.py, importable from every test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fedpoison_testing import TINY, run_simulation


@pytest.fixture
def simulate(tmp_path: Path):
    """``simulate(overrides, name="run")`` runs a tiny simulation under ``tmp_path/name``."""

    def _run(overrides: list[str], name: str = "run") -> dict[str, Any]:
        return run_simulation([*TINY, *overrides], tmp_path / name)

    return _run
