"""Every import inside fedpoison points down the stack.

foundations → math (aggregators, data, models; then attacks, which know the rules) → training
(what server and clients share: local SGD, the flat layout, privacy, the federation) → Flower
adapters (strategies and clients, which never import each other) → engines → the application
(run, cli, outputs, report, ...). A module may import its own package and anything below.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "fedpoison"

RANKS = {
    "registry": 0,
    "seeding": 0,
    "finite": 0,
    "records": 0,
    "files": 0,
    "protocol": 0,
    "provenance": 0,
    "extras": 0,
    "outputs": 1,
    "aggregators": 1,
    "data": 1,
    "models": 1,
    "attacks": 2,
    "training": 3,
    "privacy": 4,
    "federation": 4,
    "strategies": 5,
    "clients": 5,
    "engines": 6,
    "recorder": 6,
}
APPLICATION = 7  # every other top-level module or package (run, cli, config, report, ...)


def _unit(module: str) -> str:
    """``fedpoison.aggregators.krum`` → ``aggregators``; the package itself → ``fedpoison``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "fedpoison"


def _rank(unit: str) -> int:
    return RANKS.get(unit, APPLICATION)


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, package_dir: Path) -> list[tuple[int, str]]:
    """``(line, module)`` of every fedpoison import in ``path`` (relative ones resolved)."""
    module = _module_name(path, package_dir)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] == "fedpoison"]


def violations(package: Path = PACKAGE) -> list[str]:
    """One line per import in ``package`` that points up the stack or sideways between units."""
    out = []
    for path in sorted(package.rglob("*.py")):
        src = _unit(_module_name(path, package))
        for line, target in _imports(path, package):
            dst = _unit(target)
            if dst == src or (_rank(src) == APPLICATION and _rank(dst) == APPLICATION):
                continue
            if _rank(dst) >= _rank(src):
                where = path.relative_to(package.parent)
                out.append(f"{where}:{line} imports {target} ({src} → {dst})")
    return out


def test_every_import_points_down() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("source", "statement", "wrong"),
    [
        ("strategies/robust.py", "from fedpoison.engines.grid import Grid", True),  # up
        ("strategies/robust.py", "import fedpoison.clients.app", True),  # sideways
        ("aggregators/krum.py", "from ..training import flat", True),  # up, relative
        ("strategies/robust.py", "from fedpoison.aggregators import krum", False),  # down
        ("run.py", "from fedpoison.cli import main", False),  # within the application
    ],
)
def test_an_import_is_judged_by_its_direction(
    tmp_path: Path, source: str, statement: str, wrong: bool
) -> None:
    module = tmp_path / "fedpoison" / source
    module.parent.mkdir(parents=True)
    module.write_text(statement + "\n", encoding="utf-8")
    assert bool(violations(tmp_path / "fedpoison")) == wrong


def test_every_unit_has_a_rank() -> None:
    units = {p.stem if p.is_file() else p.name for p in PACKAGE.iterdir()}
    units = {u for u in units if not u.startswith(("_", "."))} - {"py", "conf"}
    layered = units & set(RANKS)
    assert layered == set(RANKS), f"RANKS names units that do not exist: {set(RANKS) - units}"


SERVER_PATH = ["strategies", "clients", "run.py", "execute.py", "baselines.py"]
LONGEST = 40


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function's body, its docstring left out (a Flower-style constructor's
    keyword parameters are its public API, not length to split)."""
    body = node.body
    first = body[0]
    if isinstance(first, ast.Expr) and isinstance(getattr(first, "value", None), ast.Constant):
        body = body[1:] or body
    return node.end_lineno - body[0].lineno + 1  # type: ignore[operator]


def test_no_long_function_on_the_server_path() -> None:
    paths = [p for entry in SERVER_PATH for p in sorted((PACKAGE / entry).glob("**/*.py"))]
    paths += [PACKAGE / entry for entry in SERVER_PATH if entry.endswith(".py")]
    long = [
        f"{path.name}:{node.name} ({_body_lines(node)} lines)"
        for path in paths
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _body_lines(node) > LONGEST
    ]
    assert len(paths) > 10 and long == []
