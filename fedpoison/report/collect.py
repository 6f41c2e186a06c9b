"""Reading a study: every ``results.json`` under a directory, plus the jobs that left none.

A study is a Hydra multirun tree. Each readable ``results.json`` becomes a :class:`Run` named by
its dataset, defense, attack and number of malicious clients; any other setting that differs
between runs of the same name (seeds apart) becomes the run's ``variant``, so that a
configuration is ``(dataset, defense, attack, num_malicious, variant)`` and seeds are replicates.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fedpoison.config import flatten_config
from fedpoison.outputs import RESULTS, load_results

NO_ATTACK = "none"
COMPLETE = "complete"
_SPECIAL_NAMES = {
    "FedAvg": "fedavg",
    "FLTrust": "fltrust",
    "Flame": "flame",
    "FLAME": "flame",
    "FoolsGold": "foolsgold",
    "DnC": "dnc",
}
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NOT_SETTINGS = frozenset({"seed", "progress", "verbose", "output.fsync_every_round"})
"""Replicates, display or durability only: never a variant."""
_UNSET = "<unset>"


@dataclass(frozen=True)
class Run:
    """One run directory's ``results.json``."""

    path: Path
    status: str
    dataset: str
    defense: str
    attack: str
    num_malicious: int
    seed: int | None
    num_rounds: int | None
    rounds: list[dict[str, Any]]
    final: dict[str, Any] | None
    provenance: dict[str, Any]
    settings: dict[str, str]
    """The flattened config (dotted key → JSON text), without seed and display-only keys."""
    variant: str = ""
    """Settings that set this run apart from others of the same name, e.g. ``num_rounds=50``."""

    @property
    def complete(self) -> bool:
        """Whether the run finished all its rounds."""
        return self.status == COMPLETE


@dataclass(frozen=True)
class Study:
    """Everything found under a study directory."""

    root: Path
    runs: list[Run]
    unreadable: list[Path]
    """``results.json`` files that are not valid JSON."""
    orphans: list[tuple[Path, list[str]]]
    """Job directories with ``.hydra/`` but no ``results.json``, with their Hydra overrides."""


def snake_case(name: str) -> str:
    """Registry name of an aggregator class: ``MultiKrum`` → ``multi_krum``,
    ``FLTrust`` → ``fltrust``."""
    return _SPECIAL_NAMES.get(name) or _CAMEL_BOUNDARY.sub("_", name).lower()


def _target_name(section: dict[str, Any]) -> str:
    return str(section.get("_target_") or "unknown").rsplit(".", 1)[-1]


def defense_name(defense: dict[str, Any] | None) -> str:
    """``defense.name`` or the snake-cased class of ``defense._target_``, plus ``+pre`` steps."""
    defense = defense or {}
    name = str(defense.get("name") or snake_case(_target_name(defense)))
    for step in defense.get("pre") or []:
        name += "+" + str(step.get("name") if isinstance(step, dict) else step)
    return name


def dataset_name(dataset: dict[str, Any] | None) -> str:
    """``dataset.name`` or the loader of ``dataset._target_`` without ``load_``."""
    dataset = dataset or {}
    if dataset.get("name"):
        return str(dataset["name"])
    return snake_case(_target_name(dataset)).removeprefix("load_")


def _parse(path: Path, data: dict[str, Any]) -> Run:
    config = data.get("config") or {}
    settings = {k: v for k, v in flatten_config(config).items() if k not in _NOT_SETTINGS}
    seed = config.get("seed", (data.get("provenance") or {}).get("seed"))
    num_rounds = config.get("num_rounds")
    return Run(
        path=path.parent,
        status=str(data.get("status", "unknown")),
        dataset=dataset_name(config.get("dataset")),
        defense=defense_name(config.get("defense")),
        attack=str((config.get("attack") or {}).get("name") or NO_ATTACK),
        num_malicious=len(data.get("malicious_clients") or []),
        seed=None if seed is None else int(seed),
        num_rounds=None if num_rounds is None else int(num_rounds),
        rounds=list(data.get("rounds") or []),
        final=data.get("final"),
        provenance=dict(data.get("provenance") or {}),
        settings=settings,
    )


def varying_keys(runs: list[Run]) -> list[str]:
    """The settings that vary within a (name) group of ``runs``, sorted: what ``variant`` shows."""
    groups: dict[tuple[str, str, str, int], list[Run]] = defaultdict(list)
    for run in runs:
        groups[(run.dataset, run.defense, run.attack, run.num_malicious)].append(run)
    varying: set[str] = set()
    for members in groups.values():
        keys = set().union(*(m.settings for m in members))
        varying |= {k for k in keys if len({m.settings.get(k, _UNSET) for m in members}) > 1}
    return sorted(varying)


def setting(run: Run, key: str) -> str:
    """``run``'s value of ``key`` as JSON text, ``<unset>`` when its config lacks it."""
    return run.settings.get(key, _UNSET)


def _with_variants(runs: list[Run]) -> list[Run]:
    """Set each run's ``variant`` from the settings that vary within a (name) group."""
    ordered = varying_keys(runs)
    return [
        replace(run, variant=" ".join(f"{k}={run.settings.get(k, _UNSET)}" for k in ordered))
        for run in runs
    ]


def _overrides(job_dir: Path) -> list[str]:
    """The ``key=value`` lines of ``.hydra/overrides.yaml`` (a plain YAML list), if any."""
    try:
        lines = (job_dir / ".hydra" / "overrides.yaml").read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    return [line[2:].strip().strip("'\"") for line in lines if line.startswith("- ")]


def load_study(root: Path) -> Study:
    """Every run under ``root`` (recursively), sorted by path; a killed run has every round it
    completed (:func:`fedpoison.outputs.load_results`)."""
    runs: list[Run] = []
    unreadable: list[Path] = []
    for path in sorted(root.rglob(RESULTS)):
        data = load_results(path.parent)  # with the journal's rounds of a killed run
        if data is None:
            unreadable.append(path)
        else:
            runs.append(_parse(path, data))
    orphans = [
        (hydra.parent, _overrides(hydra.parent))
        for hydra in sorted(root.rglob(".hydra"))
        if hydra.is_dir() and not (hydra.parent / RESULTS).exists()
    ]
    return Study(root=root, runs=_with_variants(runs), unreadable=unreadable, orphans=orphans)
