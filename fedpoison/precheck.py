"""Check the command line before Hydra starts, so every mistake ends in one line (exit 2; an
unwritable run directory, :func:`unwritable_output`: exit 4).

Composes the config with the command-line overrides, including under ``--cfg``/``--resolve``
and, for ``-m``, once per value of each swept group, and checks the top-level keys
(:func:`fedpoison.config.check_keys`). Hydra's multi-line errors are folded into one line that
says what is wrong and suggests the nearest name. Returns the message to print, or ``None``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from fedpoison.conf import CONF_DIR
from fedpoison.config import ConfigError, check_keys, config_groups, did_you_mean, known_keys

_NOT_CHECKED = (
    "--help",
    "-h",
    "--hydra-help",
    "--info",
    "--version",
    "--shell-completion",
    "-sc",
    "--config-path",
    "-cp",
    "--config-name",
    "-cn",
    "--config-dir",
    "-cd",
    "--experimental-rerun",
)
"""Flags after which Hydra does not compose fedpoison's config as given (or prints no config)."""
_FLAGS_WITH_VALUE = ("--cfg", "-c", "--package", "-p")
_OPTIONS = re.compile(r"Available options in '([^']+)':\n(.*?)(?:\nConfig search path:|\Z)", re.S)


def _missing_option(message: str) -> str | None:
    """``defense: no option 'krumm' (did you mean 'krum'?; available: …)`` from Hydra's
    MissingConfigException text, or ``None`` if the text is not one."""
    found = re.search(r"Could not find '([^']+)/([^'/]+)'", message)
    options = _OPTIONS.search(message)
    if not found or not options:
        return None
    group, name = found.groups()
    names = [line.strip() for line in options.group(2).splitlines() if line.strip()]
    return f"{group}: no option {name!r}{did_you_mean(name, names)}; available: {', '.join(names)}"


def one_line(message: str) -> str:
    """Hydra's error folded into one line that names the key or option and the nearest name."""
    missing = _missing_option(message)
    if missing is not None:
        return missing
    repeated = re.search(r"Multiple values for ([\w.]+)\.", message)
    if repeated:
        return (
            f"{repeated.group(1)} already has a default: "
            f"choose it with {repeated.group(1)}=NAME (no +)"
        )
    unknown = re.search(r"Could not override '([^']+)'", message)
    if unknown:
        key = unknown.group(1)
        head = key.split(".", 1)[0]
        if head not in known_keys():
            return f"unknown config key or group {key!r}{did_you_mean(head, known_keys())}"
        return f"unknown config key {key!r}: `fedpoison --cfg job` shows the keys of {head!r}"
    lines = [
        ln.strip()
        for ln in message.strip().splitlines()
        if ln.strip() and "HYDRA_FULL_ERROR" not in ln
    ]
    return re.sub(r"\s+", " ", " ".join(lines)) if lines else "invalid override"


def _compose(overrides: list[str]) -> str | None:
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides)
        check_keys(cfg)
    except ConfigError as exc:
        return str(exc)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        return one_line(str(exc))
    return None


def _job_variants(overrides: list[str]) -> list[list[str]] | str:
    """For a sweep: the overrides with every sweep at its first value, then one list per other
    value of each swept group (a typo in a group option is the likely mistake; other keys'
    values are checked by each job); or the one-line parse error."""
    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except HydraException as exc:
        return one_line(str(exc))
    values = []
    for item in parsed:
        if item.is_sweep_override():
            try:
                choices = [str(v) for v in item.sweep_string_iterator()]
            except (HydraException, TypeError, ValueError):  # interval sweeps (optuna, …)
                choices = []
            if item.key_or_group not in config_groups():
                choices = choices[:1]
            values.append([f"{item.get_key_element()}={v}" for v in choices])
        else:
            values.append([item.input_line or ""])
    base = [v[0] for v in values if v]
    variants = [base]
    for k, options in enumerate(values):
        for option in options[1:]:
            variants.append([option if j == k else v[0] for j, v in enumerate(values) if v])
    return variants


def _split(argv: list[str]) -> tuple[list[str], set[str]]:
    """(overrides, flags) of a command line."""
    overrides: list[str] = []
    flags: set[str] = set()
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in _FLAGS_WITH_VALUE:
            flags.add(name)
            skip = "=" not in arg
        elif arg.startswith("-"):
            flags.add(name)
        elif not arg.startswith(("hydra.", "hydra/", "+hydra", "~hydra", "++hydra")):
            overrides.append(arg)
    return overrides, flags


def precheck_overrides(argv: list[str]) -> str | None:
    """The one-line error for the command line ``argv``, or ``None``."""
    overrides, flags = _split(argv)
    if flags & set(_NOT_CHECKED):
        return None
    multirun = bool(flags & {"-m", "--multirun"})
    if multirun and flags & {"--cfg", "-c"}:
        return (
            "--cfg prints one composed config and cannot be combined with -m: "
            "drop -m and give one value per key"
        )
    if not multirun:
        return _compose(overrides)
    variants = _job_variants(overrides)
    if isinstance(variants, str):
        return variants
    for variant in variants:
        message = _compose(variant)
        if message is not None:
            return message
    return None


def unwritable_output(argv: list[str]) -> str | None:
    """The one-line error when the run (or sweep) directory cannot be created, else ``None``.

    The directory given as ``hydra.run.dir=``/``hydra.sweep.dir=``, else ``outputs``/``multirun``
    here; not checked for the flags that create none (``--cfg``, ``--help``, …). Checked before
    Hydra starts, which would otherwise fail with a traceback.
    """
    _, flags = _split(argv)
    if flags & {*_NOT_CHECKED, "--cfg", "-c"}:
        return None
    multirun = bool(flags & {"-m", "--multirun"})
    key, default = ("hydra.sweep.dir=", "multirun") if multirun else ("hydra.run.dir=", "outputs")
    target = Path(next((a.split("=", 1)[1] for a in argv if a.startswith(key)), default)).absolute()
    existing = next(p for p in (target, *target.parents) if p.exists())
    if os.access(existing, os.W_OK | os.X_OK) and existing.is_dir():
        return None
    return (
        f"cannot create the run directory {target}: {existing} is not a writable directory; "
        f"choose another {key[:-1]} or run from a writable directory"
    )
