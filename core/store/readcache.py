"""A bounded local cache of artifacts fetched from an object store, keyed by fingerprint.

Entries are the stored bytes (still encrypted when the artifact is: nothing is decrypted onto
disk) under WORKBENCH_HOME/cache/artifacts/<sha256>. A fingerprint names immutable content, so
an entry never goes stale; it is checked against its name on every hit (a damaged entry is
dropped and fetched again). The least recently used entries go once the total passes
WORKBENCH_ARTIFACT_CACHE_MB (0 turns the cache off).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from core.fsutil import atomic_write, sha256_bytes
from core.settings import get_settings

_HEX64 = re.compile(r"[0-9a-f]{64}")


def cache_dir() -> Path:
    return get_settings().home / "cache" / "artifacts"


def _limit_bytes() -> int:
    return int(get_settings().artifact_cache_mb * 1024 * 1024)


def get(fingerprint: str | None) -> bytes | None:
    """The cached bytes whose SHA-256 is `fingerprint`, or None."""
    if not fingerprint or not _HEX64.fullmatch(fingerprint) or _limit_bytes() <= 0:
        return None
    path = cache_dir() / fingerprint
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if sha256_bytes(data) != fingerprint:
        path.unlink(missing_ok=True)
        return None
    try:
        os.utime(path)  # recently used: evicted last
    except OSError:
        pass
    return data


def put(fingerprint: str, data: bytes) -> None:
    """Keep `data` (whose SHA-256 the caller checked is `fingerprint`); best effort: a full
    or read-only disk only costs the next load a fetch."""
    limit = _limit_bytes()
    if not _HEX64.fullmatch(fingerprint) or limit <= 0 or len(data) > limit:
        return
    try:
        atomic_write(cache_dir() / fingerprint, data)
        _evict(limit)
    except OSError:
        pass


def _evict(limit: int) -> None:
    entries = []
    for p in cache_dir().iterdir():
        if _HEX64.fullmatch(p.name):
            try:
                st = p.stat()
            except OSError:
                continue
            entries.append((st.st_mtime, st.st_size, p))
    total = sum(size for _, size, _ in entries)
    for _, size, p in sorted(entries, key=lambda e: e[0]):
        if total <= limit:
            break
        p.unlink(missing_ok=True)
        total -= size


def size_bytes() -> int:
    d = cache_dir()
    return sum(p.stat().st_size for p in d.iterdir() if p.is_file()) if d.is_dir() else 0
