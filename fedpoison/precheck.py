"""Turn Hydra's multi-line errors for bad overrides into one line, before Hydra starts.

Composes the config once with the command-line overrides (skipped for multirun and Hydra's
own flags, which Hydra reports itself). Returns the message to print, or ``None``.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

CONF_DIR = Path(__file__).resolve().parent / "conf"
_HYDRA_FLAGS = ("-m", "--multirun", "--help", "-h", "--hydra-help", "--cfg", "-c", "--info", "--version",
                "--resolve", "--package", "-p", "--run", "-r", "--shell-completion", "-sc", "--config-path",
                "-cp", "--config-name", "-cn", "--config-dir", "-cd", "--experimental-rerun")


def one_line(message: str) -> str:
    """Hydra's message folded into one line (options listed after the first line)."""
    lines = [ln.strip() for ln in message.strip().splitlines() if ln.strip()]
    if not lines:
        return "invalid override"
    options = [ln for ln in lines[1:] if not ln.endswith(":") and "HYDRA_FULL_ERROR" not in ln]
    head = re.sub(r"\s+", " ", lines[0])
    return head + (f" (available: {', '.join(options)})" if options and "Available" in message else "")


def precheck_overrides(argv: list[str]) -> str | None:
    """Compose ``fedpoison/conf`` with the overrides in ``argv``; the error line or ``None``."""
    if any(arg in _HYDRA_FLAGS or arg.split("=", 1)[0] in _HYDRA_FLAGS for arg in argv):
        return None
    overrides = [a for a in argv if not a.startswith(("hydra.", "hydra/", "+hydra", "~hydra"))]
    warnings.filterwarnings("ignore", message="provider=hydra.searchpath")
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        line = one_line(str(exc))
        if "'experiment'" in line and not Path("experiments").is_dir():
            line += " (experiment presets live in experiments/: run fedpoison from the repository root)"
        return line
    return None
