"""Keep Flower's, Ray's and alembic's output out of the way unless ``verbose=true``."""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from fedpoison.config import first_line


def quiet_environment() -> None:
    """Environment for Flower/Ray set before they are imported: no telemetry, state in /tmp."""
    base = os.path.join(tempfile.gettempdir(), "fedpoison")
    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("FLWR_HOME", os.path.join(base, "flwr"))
    os.environ.setdefault("RAY_TMPDIR", os.path.join(base, "ray"))
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def configure_loggers(verbose: bool) -> None:
    """Call after importing flwr (its import resets its logger)."""
    level = logging.INFO if verbose else logging.WARNING
    for name in ("flwr", "ray", "alembic"):
        logger = logging.getLogger(name)
        logger.setLevel(level if name != "flwr" or verbose else logging.ERROR)
        logger.propagate = False  # Hydra's root handler would print every line twice


LOG = "fedpoison.log"


@contextmanager
def run_log(run_dir: Path) -> Iterator[logging.Logger]:
    """The ``fedpoison.run`` logger writing to ``run_dir/fedpoison.log`` (appended, so a resumed
    run's log continues): start, resume, summary, and the error that ended the run."""
    handler = logging.FileHandler(run_dir / LOG, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log = logging.getLogger("fedpoison.run")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(handler)
    try:
        yield log
    except Exception as exc:
        log.error("failed: %s", first_line(exc))
        raise
    finally:
        log.removeHandler(handler)
        handler.close()
