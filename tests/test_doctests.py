"""The ``>>>`` examples in fedpoison's docstrings run, and print what they show.

Every module under ``fedpoison`` is found with :func:`pkgutil.walk_packages`; each one whose
source holds an example gets one test that runs all of its examples with :mod:`doctest`
(``NORMALIZE_WHITESPACE``) and fails on any mismatch. A module whose import needs an optional
extra that is not installed is skipped, naming the extra. A second test checks that the
public rules and attacks each carry at least one example.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import pkgutil
from types import ModuleType

import pytest

import fedpoison
from fedpoison import aggregators, attacks

NOT_IMPORTED = {"fedpoison.__main__": "importing it runs the fedpoison command"}
OPTIONAL = {  # top-level import name → the install that provides it
    "ray": "flwr[simulation] (Ray)",
    "tensorboard": "the 'tensorboard' extra",
    "opacus": "opacus",
}


def _module_names() -> list[str]:
    names = [fedpoison.__name__]
    for info in pkgutil.walk_packages(fedpoison.__path__, prefix=f"{fedpoison.__name__}."):
        names.append(info.name)
    return sorted(n for n in names if n not in NOT_IMPORTED)


def _has_examples(name: str) -> bool:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return False
    with open(spec.origin, encoding="utf-8") as source:
        return ">>>" in source.read()


WITH_EXAMPLES = [name for name in _module_names() if _has_examples(name)]


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        root = (exc.name or "").split(".")[0]
        if root in OPTIONAL:
            pytest.skip(f"{name} needs {OPTIONAL[root]}, which is not installed")
        raise


def test_modules_with_examples_are_found() -> None:
    assert "fedpoison.aggregators.krum" in WITH_EXAMPLES
    assert "fedpoison.attacks.alie" in WITH_EXAMPLES


@pytest.mark.parametrize("name", WITH_EXAMPLES)
def test_docstring_examples(name: str) -> None:
    module = _import(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(verbose=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    report: list[str] = []
    attempted = failed = 0
    for test in finder.find(module, name):
        result = runner.run(test, out=report.append)
        attempted, failed = attempted + result.attempted, failed + result.failed
    assert attempted > 0, f"{name} mentions >>> but no docstring example was collected"
    assert failed == 0, "".join(report)


DOCUMENTED = [
    aggregators.krum,
    aggregators.multi_krum,
    aggregators.median,
    aggregators.trimmed_mean,
    aggregators.mean,
    aggregators.bulyan,
    aggregators.geometric_median,
    aggregators.centered_clipping,
    aggregators.fltrust,
    aggregators.norm_clipping,
    attacks.alie_attack,
    attacks.alie_z_max,
    attacks.ipm_attack,
    attacks.sign_flip_attack,
    attacks.scaling_attack,
    attacks.min_max_attack,
    attacks.fang_krum_attack,
]


@pytest.mark.parametrize("function", DOCUMENTED, ids=lambda f: f.__name__)
def test_public_function_has_an_example(function) -> None:
    examples = doctest.DocTestParser().get_examples(function.__doc__ or "")
    assert examples, f"{function.__module__}.{function.__name__} has no >>> example"
