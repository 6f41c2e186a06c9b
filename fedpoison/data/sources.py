"""Where a file-backed dataset comes from, in the order of docs/conventions.md §C6 (offline first).

1. a directory: the loader's ``root`` argument, else ``$FEDPOISON_DATA``, laid out like
   torchvision's raw files;
2. the project's ``.npz`` cache (``$FEDPOISON_CACHE``, else ``~/.cache/fedpoison``);
3. copies already installed on the machine (a Debian package, a pip package);
4. a download from the canonical mirrors, only when the caller allows it.

Whatever a source yields is verified against the dataset's spec; a copy read from a
non-cache source is then written to the cache (atomically: temporary file + ``os.replace``),
so the next load is one ``np.load(allow_pickle=False)``. A cache file that fails to load or
verify is ignored with a warning and rewritten; a directory or installed copy that fails
verification raises, since it would otherwise be silently shadowed.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from fedpoison.data.arrays import DatasetSpec, RawSplits, verify
from fedpoison.files import atomic_path

DATA_ENV = "FEDPOISON_DATA"
CACHE_ENV = "FEDPOISON_CACHE"


@dataclass(frozen=True)
class Source:
    """One place a dataset may be: ``read()`` returns ``None`` when it is not there."""

    description: str  # shown in errors, e.g. "directory /data/MNIST/raw"
    read: Callable[[], RawSplits | None]


def data_root(root: str | os.PathLike[str] | None) -> Path | None:
    """The directory to search first: ``root`` if given, else ``$FEDPOISON_DATA``, else none."""
    chosen = root if root is not None else os.environ.get(DATA_ENV)
    return Path(chosen).expanduser() if chosen else None


def cache_dir() -> Path:
    """``$FEDPOISON_CACHE`` if set, else ``~/.cache/fedpoison``."""
    chosen = os.environ.get(CACHE_ENV)
    return Path(chosen).expanduser() if chosen else Path.home() / ".cache" / "fedpoison"


def cache_path(spec: DatasetSpec) -> Path:
    """The cache file of one dataset: ``<cache_dir>/<name>.npz``."""
    return cache_dir() / f"{spec.name}.npz"


def read_cache(spec: DatasetSpec) -> RawSplits | None:
    """The cached arrays if the cache file exists, loads without pickle and verifies."""
    path = cache_path(spec)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            raw = RawSplits(**{f.name: npz[f.name] for f in fields(RawSplits)})
        verify(spec, raw, f"cache {path}")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        warnings.warn(
            f"ignoring the unusable dataset cache {path} ({err}); it is rebuilt from the source",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return raw


def write_cache(spec: DatasetSpec, raw: RawSplits) -> None:
    """Write ``raw`` to the cache atomically; warn (never fail) if the cache is not writable."""
    path = cache_path(spec)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as f:  # a file object: savez adds no suffix
            np.savez(f, **{fl.name: getattr(raw, fl.name) for fl in fields(RawSplits)})
    except OSError as err:
        warnings.warn(
            f"could not write the dataset cache {path}: {err}", RuntimeWarning, stacklevel=3
        )


def load_raw(
    spec: DatasetSpec,
    local: Sequence[Source],
    installed: Sequence[Source],
    remote: Source | None,
    download: bool,
) -> RawSplits:
    """Try ``local`` directories, the cache, ``installed`` copies, then (if allowed) ``remote``.

    Raises ``FileNotFoundError`` listing every place searched and the install command.
    """
    for source in local:
        raw = source.read()
        if raw is not None:
            return _verified_and_cached(spec, raw, source)
    cached = read_cache(spec)
    if cached is not None:
        return cached
    for source in installed:
        raw = source.read()
        if raw is not None:
            return _verified_and_cached(spec, raw, source)
    if download and remote is not None:
        raw = remote.read()
        if raw is not None:
            return _verified_and_cached(spec, raw, remote)
    searched = [s.description for s in local] + [f"cache {cache_path(spec)}"]
    searched += [s.description for s in installed]
    hint = ""
    if remote is not None and not download:
        hint = f", or allow a download (dataset.download=true) from {remote.description}"
    raise FileNotFoundError(
        f"dataset {spec.name!r} not found offline (searched: {'; '.join(searched)}). "
        f"To provide it: {spec.install_hint}{hint}."
    )


def _verified_and_cached(spec: DatasetSpec, raw: RawSplits, source: Source) -> RawSplits:
    verify(spec, raw, source.description)
    write_cache(spec, raw)
    return raw
