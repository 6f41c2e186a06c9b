"""The README's table of defenses and pre-aggregators, generated from the registries."""

from __future__ import annotations

from fedpoison.aggregators.base import AGGREGATORS
from fedpoison.aggregators.pre import PRE_AGGREGATORS


def markdown_table() -> str:
    """Markdown table: defense (``defense=<name>``), paper, requirement on n and f, module;
    then the pre-aggregators (``defense.pre=[<name>]``)."""
    lines = [
        "| defense | paper | requirement on n and f | module |",
        "|---|---|---|---|",
    ]
    for name, rule in sorted(AGGREGATORS.items()):
        lines.append(f"| `{name}` | {rule.paper} | {rule.requirement} | `{rule.__module__}` |")
    lines += ["", "| pre-aggregator | paper | module |", "|---|---|---|"]
    for name, pre in sorted(PRE_AGGREGATORS.items()):
        lines.append(f"| `{name}` | {pre.paper} | `{pre.__module__}` |")
    return "\n".join(lines) + "\n"
