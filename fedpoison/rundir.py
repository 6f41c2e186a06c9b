"""Run directories: fresh by default, held by one process, never silently reused.

- :func:`claim` (the ``fedpoison.claim`` resolver behind the default ``hydra.run.dir``) creates
  the directory atomically: ``outputs/<date>/<time>``, or ``<time>-2``, ``<time>-3``, … when
  another run took that name in the same second.
- :class:`RunLock` holds an exclusive lock on ``<run dir>/.fedpoison.lock`` while a run (and
  its baselines) write there; the operating system releases it when the process ends, however
  it ends, so a killed run never blocks its own resume.
- :func:`check_reuse` refuses a directory that already holds a run unless ``resume=true``
  (continue it) or ``overwrite=true`` (replace it).
"""

from __future__ import annotations

import fcntl
import functools
import os
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from omegaconf import DictConfig, OmegaConf

from fedpoison.checkpoint import CHECKPOINT
from fedpoison.config import DISPLAY_KEYS, ConfigError, config_changes
from fedpoison.files import atomic_write_text
from fedpoison.logs import LOG
from fedpoison.outputs import RUN_FILES

LOCK = ".fedpoison.lock"


@functools.cache
def claim(path: str) -> str:
    """Create ``path`` (or ``path-2``, ``path-3``, … if taken) and return the one created.

    ``os.mkdir`` is atomic, so two runs started in the same second get two directories.
    Cached: the same process resolving the same name again gets the same directory.
    """
    base = Path(path)
    base.parent.mkdir(parents=True, exist_ok=True)
    candidate, k = base, 1
    while True:
        try:
            candidate.mkdir()
            return str(candidate)
        except FileExistsError:
            k += 1
            candidate = base.with_name(f"{base.name}-{k}")


class RunLock:
    """``with RunLock(run_dir):`` — exclusive use of ``run_dir`` by this process.

    Raises :class:`~fedpoison.config.ConfigError` naming the holder's pid when another
    process holds it. The lock file stays (it is empty apart from the pid); only the lock
    is released.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK
        self._file: IO[str] | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 (held until __exit__)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            handle.close()
            raise ConfigError(
                f"{self.path.parent} is in use by another fedpoison run (pid {holder}); "
                "wait for it to finish or choose another hydra.run.dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _describe(done: dict[str, Any] | None, has_checkpoint: bool) -> str:
    if done is None:
        return "a checkpoint of an earlier run"
    rounds = len(done.get("rounds") or [])
    total = (done.get("config") or {}).get("num_rounds", "?")
    status = done.get("status", "unknown")
    if status == "complete":
        return f"a complete run ({rounds} rounds)"
    return (
        f"a {status} run ({rounds} of {total} rounds"
        f"{', with a checkpoint' if has_checkpoint else ''})"
    )


def check_reuse(
    run_dir: Path,
    done: dict[str, Any] | None,
    config: dict[str, Any],
    *,
    resume: bool,
    overwrite: bool,
) -> None:
    """Refuse to start in a directory that holds another run's outputs.

    ``done`` is the directory's ``results.json`` (or ``None``), ``config`` the resolved config
    of the run about to start. With ``overwrite`` the old outputs (results, metrics, journal,
    checkpoint, log) are removed; with ``resume``
    a run with other settings and no checkpoint to compare is refused (the checkpoint's own
    check covers the rest); otherwise any earlier run is refused. Raises
    :class:`~fedpoison.config.ConfigError` with one line that says what to do.
    """
    has_checkpoint = (run_dir / CHECKPOINT).exists()
    if done is None and not has_checkpoint:
        return
    if overwrite:
        for name in (*RUN_FILES, CHECKPOINT, LOG):
            (run_dir / name).unlink(missing_ok=True)
        return
    what = _describe(done, has_checkpoint)
    if not resume:
        raise ConfigError(
            f"{run_dir} already holds {what}; resume=true continues it, "
            "overwrite=true replaces it, or choose another hydra.run.dir"
        )
    if done is not None and not has_checkpoint:
        changed = config_changes(done.get("config") or {}, config, DISPLAY_KEYS | {"num_rounds"})
        if changed:
            raise ConfigError(
                f"resume=true: {run_dir} holds {what} with other settings "
                f"({', '.join(changed[:5])}) and no checkpoint; "
                "use the same settings, another hydra.run.dir, or overwrite=true"
            )


def save_hydra_files(run_dir: Path, cfg: DictConfig) -> None:
    """Hydra's ``.hydra/`` files (``config.yaml``, ``hydra.yaml``, ``overrides.yaml``), written
    only once the directory is known to be free: ``hydra.output_subdir`` is null, so Hydra
    itself does not write them into a directory that is then refused."""
    from hydra.core.hydra_config import HydraConfig

    hydra_node = HydraConfig.get()
    out = run_dir / ".hydra"
    atomic_write_text(out / "config.yaml", OmegaConf.to_yaml(cfg))
    atomic_write_text(out / "hydra.yaml", OmegaConf.to_yaml({"hydra": hydra_node}))
    atomic_write_text(out / "overrides.yaml", OmegaConf.to_yaml(hydra_node.overrides.task))
