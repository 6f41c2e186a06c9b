"""Shared fixtures for the attack tests (the stand-in defenses live in attack_tester.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from attack_tester import CoordinateMedian, Mean, view

from fedpoison.attacks import AdversaryView

ViewFactory = Callable[..., AdversaryView]


@pytest.fixture
def make_view() -> ViewFactory:
    """``make_view(own, benign, knowledge="all", knows_defense=False, seed=0, ...)``."""
    return view


@pytest.fixture
def median_defense() -> CoordinateMedian:
    return CoordinateMedian()


@pytest.fixture
def mean_defense() -> Mean:
    return Mean()
