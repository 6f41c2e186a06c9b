"""Opt-in downloads (``download=True`` only): fetch a file from the first mirror that answers.

No run ever downloads implicitly (docs/conventions.md §C6). What is fetched here is a raw
file; callers verify what they decode from it (a SHA-256 of the decoded arrays, or the
archive digest the dataset authors publish) before anything reaches the cache.
"""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Sequence
from pathlib import Path

MAX_DOWNLOAD_BYTES = 512 << 20  # larger than any archive fetched here (CIFAR-10: 170 MB)
_CHUNK = 1 << 20


def fetch(
    urls: Sequence[str], dest: Path, timeout: float = 60.0, max_bytes: int = MAX_DOWNLOAD_BYTES
) -> Path:
    """Stream the first URL that works to ``dest``; raise ``OSError`` listing every failure.

    The body is written to ``dest.with_suffix(".part")`` and renamed when complete; a body
    longer than ``max_bytes`` is abandoned.
    """
    failures = []
    part = dest.with_name(dest.name + ".part")
    for url in urls:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, part.open("wb") as out:
                copied = 0
                while chunk := response.read(_CHUNK):
                    copied += len(chunk)
                    if copied > max_bytes:
                        raise OSError(f"more than {max_bytes} bytes")
                    out.write(chunk)
            part.replace(dest)
            return dest
        except OSError as err:  # URLError, HTTPError and timeouts are OSErrors
            failures.append(f"{url}: {err}")
            part.unlink(missing_ok=True)
    raise OSError(f"could not download {dest.name}: " + "; ".join(failures))


def md5_hex(path: Path) -> str:
    """MD5 of a file, for matching digests that dataset authors publish (not for security)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
