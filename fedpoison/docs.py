"""Keep README.md's catalogues generated from the registries: ``python -m fedpoison.docs``.

The defense and attack tables live between ``<!-- BEGIN name -->``/``<!-- END name -->``
markers; a test fails when the README drifts from the registries.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

from fedpoison.aggregators.catalogue import markdown_table
from fedpoison.attacks.catalogue import attack_catalogue

SECTIONS: dict[str, Callable[[], str]] = {"defenses": markdown_table, "attacks": attack_catalogue}


def _escape(text: str) -> str:
    """``text`` as a literal ``re.sub`` replacement."""
    return text.replace("\\", "\\\\")


def render(readme: str) -> str:
    """``readme`` with every generated section replaced by its current table."""
    for name, table in SECTIONS.items():
        pattern = re.compile(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)", re.S)
        if not pattern.search(readme):
            raise ValueError(
                f"README lacks the <!-- BEGIN {name} --> … <!-- END {name} --> markers"
            )
        readme = pattern.sub(rf"\g<1>{_escape(table())}\g<2>", readme)
    return readme


def main(argv: list[str] | None = None) -> int:
    """Rewrite the README given as the first argument (default ./README.md) in place."""
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0] if args else "README.md")
    path.write_text(render(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
