"""The artifact store: every artifact file the workbench writes or reads goes through here.

Where: `WORKBENCH_ARTIFACT_URL` (s3://bucket/prefix or any fsspec URL; `AWS_ENDPOINT_URL` for
S3-compatible servers; `WORKBENCH_ARTIFACT_OPTIONS`, a JSON object of fsspec storage options),
or a local path; unset, the directory WORKBENCH_HOME/artifacts as always. Rows keep naming an
artifact by its path relative to WORKBENCH_HOME (`artifacts/models/churn/<uuid>.skops`), so a
store moves between a directory and a bucket by copying the files, not by rewriting rows.

Promises (docs/scale/artifacts.md):
- a write is whole or absent: a temp file renamed into place on a filesystem, one PUT on an
  object store (an object appears complete or not at all), and callers commit the row that
  names it only after `write` returned;
- every read is checked against the fingerprint(s) its row recorded before anything uses it;
- with WORKBENCH_ARTIFACT_KEY new artifacts are sealed (core.store.sealing) and opened on read;
- reads from a remote store go through a bounded local cache keyed by fingerprint
  (core.store.readcache).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from core.errors import ArtifactIntegrityError, SettingsError, StorageUnavailableError
from core.fsutil import atomic_write, sha256_bytes
from core.settings import Settings, get_settings
from core.store import readcache, sealing

PREFIX = "artifacts/"
# single-request writes that appear whole or not at all; other remote filesystems get a
# temporary name and a rename
_ATOMIC_PUT = {"s3", "s3a", "gs", "gcs", "abfs", "abfss", "az", "adl", "memory"}


class ArtifactMissingError(ArtifactIntegrityError):
    """No stored file where a row says its artifact is."""


@dataclass(frozen=True)
class Entry:
    key: str  # below the store's root, '/'-separated
    size: int
    mtime: float  # seconds since the epoch


class Backend(Protocol):
    remote: bool

    def put(self, key: str, data: bytes) -> None: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def get(self, key: str) -> bytes: ...
    def head(self, key: str, n: int) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def find(self, prefix: str) -> list[Entry]: ...
    def copy(self, src: str, dst: str) -> None: ...
    def where(self, key: str) -> str: ...


class LocalBackend:
    """A directory: temp file + fsync + rename, exactly as before the store existed."""

    remote = False

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / key

    def put(self, key: str, data: bytes) -> None:
        atomic_write(self.path(key), data)

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def get(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def head(self, key: str, n: int) -> bytes:
        with open(self.path(key), "rb") as fh:
            return fh.read(n)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def find(self, prefix: str) -> list[Entry]:
        base = self.path(prefix)
        if not base.is_dir():
            return []
        out = []
        for p in base.rglob("*"):
            if p.name.startswith(".") and p.name.endswith(".tmp"):  # a write under way
                continue
            try:
                if p.is_file():
                    st = p.stat()
                    out.append(Entry(p.relative_to(self.root).as_posix(), st.st_size,
                                     st.st_mtime))
            except OSError:
                continue
        return out

    def copy(self, src: str, dst: str) -> None:
        """A hard link where the filesystem allows (stored files are immutable), else a
        copy; renamed into place either way."""
        target = self.path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            try:
                os.link(self.path(src), tmp)
            except OSError:
                shutil.copyfile(self.path(src), tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def where(self, key: str) -> str:
        return str(self.path(key))


class FsspecBackend:
    """Any fsspec filesystem (S3 through s3fs, GCS, Azure, ...)."""

    remote = True

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        import fsspec

        self.url = url.rstrip("/")
        try:
            self.fs, base = fsspec.core.url_to_fs(self.url, **options)
        except ImportError as exc:
            raise SettingsError(
                f"WORKBENCH_ARTIFACT_URL={url!r} needs a filesystem package that is not "
                f"installed ({exc}). For s3:// install s3fs (`pip install s3fs`); gs:// needs "
                "gcsfs, abfs:// adlfs.") from None
        except (ValueError, TypeError) as exc:
            raise SettingsError(f"WORKBENCH_ARTIFACT_URL={url!r} cannot be opened: {exc}. "
                                "Use s3://bucket/prefix, another fsspec URL or a local "
                                "path.") from None
        self.base = base.rstrip("/")
        protocol = self.fs.protocol
        protocols = {protocol} if isinstance(protocol, str) else set(protocol)
        self.atomic_put = bool(protocols & _ATOMIC_PUT)

    def _p(self, key: str) -> str:
        return f"{self.base}/{key}"

    def where(self, key: str) -> str:
        return f"{self.url}/{key}"

    def _call(self, what: str, key: str, fn: Any, *args: Any, **kw: Any) -> Any:
        try:
            return fn(*args, **kw)
        except FileNotFoundError:
            raise
        except Exception as exc:  # the filesystem's own errors: network, auth, server
            raise StorageUnavailableError(
                f"The artifact store could not {what} {self.where(key)} ({type(exc).__name__}:"
                f" {exc}). Nothing was changed that refers to it; check that the store is "
                "reachable (WORKBENCH_ARTIFACT_URL, AWS_ENDPOINT_URL, credentials) and try "
                "again.") from None

    def put(self, key: str, data: bytes) -> None:
        if self.atomic_put:
            self._call("write", key, self.fs.pipe_file, self._p(key), data)
            return
        tmp = f"{self._p(key)}.{uuid.uuid4().hex[:8]}.tmp"
        self._call("write", key, self.fs.pipe_file, tmp, data)
        self._call("write", key, self.fs.mv, tmp, self._p(key))

    def exists(self, key: str) -> bool:
        return bool(self._call("read", key, self.fs.exists, self._p(key)))

    def size(self, key: str) -> int:
        return int(self._call("read", key, self.fs.size, self._p(key)) or 0)

    def get(self, key: str) -> bytes:
        return self._call("read", key, self.fs.cat_file, self._p(key))

    def head(self, key: str, n: int) -> bytes:
        return self._call("read", key, self.fs.cat_file, self._p(key), start=0, end=n)

    def delete(self, key: str) -> None:
        try:
            self._call("delete", key, self.fs.rm_file, self._p(key))
        except FileNotFoundError:
            pass

    def find(self, prefix: str) -> list[Entry]:
        try:
            found = self._call("list", prefix, self.fs.find, self._p(prefix), detail=True)
        except FileNotFoundError:
            return []
        out = []
        for path, info in found.items():
            if info.get("type") == "directory" or path.endswith(".tmp"):
                continue
            key = path[len(self.base) + 1:] if path.startswith(self.base + "/") else path
            out.append(Entry(key, int(info.get("size") or 0), _mtime(info)))
        return out

    def copy(self, src: str, dst: str) -> None:
        if self.atomic_put:  # a server-side copy is a single request as well
            self._call("copy", dst, self.fs.copy, self._p(src), self._p(dst))
        else:
            self.put(dst, self.get(src))


def _mtime(info: dict[str, Any]) -> float:
    for name in ("LastModified", "last_modified", "mtime", "created", "updated"):
        value = info.get(name)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return 0.0


def _options(text: str) -> dict[str, Any]:
    text = text.strip()
    try:
        options = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        options = exc
    if not isinstance(options, dict):
        raise SettingsError("WORKBENCH_ARTIFACT_OPTIONS must be a JSON object of fsspec "
                            'storage options, e.g. {"anon": false}.')
    return options


def backend(settings: Settings | None = None) -> Backend:
    """The store the settings name (one per distinct configuration, reused)."""
    s = settings or get_settings()
    url = (s.artifact_url or "").strip()
    return _backend(url, s.artifact_options, str(s.home), os.environ.get("AWS_ENDPOINT_URL"))


@functools.lru_cache(maxsize=8)
def _backend(url: str, options_text: str, home: str, endpoint: str | None) -> Backend:
    if not url:
        return LocalBackend(Path(home) / "artifacts")
    if "://" not in url or url.startswith("file://"):
        local = Path(url.removeprefix("file://")).expanduser()
        return LocalBackend(local if local.is_absolute() else Path(home) / local)
    options = _options(options_text)
    if url.split("://", 1)[0] in ("s3", "s3a"):
        if endpoint and "endpoint_url" not in options:
            options["endpoint_url"] = endpoint
        options.setdefault("use_listings_cache", False)  # other hosts write too
    return FsspecBackend(url, options)


def location() -> str:
    """Where artifacts are kept, for messages."""
    b = backend()
    return b.url if isinstance(b, FsspecBackend) else str(b.root)  # type: ignore[attr-defined]


def key_of(relpath: str) -> str:
    return relpath.removeprefix(PREFIX)


def relpath_of(key: str) -> str:
    return PREFIX + key


def where(relpath: str) -> str:
    """Where the stored file of `relpath` is, for messages."""
    return backend().where(key_of(relpath))


def exists(relpath: str) -> bool:
    return backend().exists(key_of(relpath))


def local_path(relpath: str) -> Path | None:
    """The file of `relpath` when the store is a directory (None on an object store)."""
    b = backend()
    return b.path(key_of(relpath)) if isinstance(b, LocalBackend) else None


@dataclass(frozen=True)
class Written:
    relpath: str  # what a row records
    fingerprint: str  # SHA-256 of the plaintext: the artifact's identity
    stored_fingerprint: str  # SHA-256 of the stored bytes (equal when not encrypted)
    size_bytes: int  # of the plaintext
    key_id: str | None  # the key that sealed it, None when stored in plaintext


def write(key: str, data: bytes, *, encrypt: bool = True, cache: bool = True) -> Written:
    """Store `data` under `key` (sealed when a key is set and `encrypt`), whole or not at all.
    Raises before anything is visible if the store refuses it. `cache`: keep a copy in the
    local read cache (for artifacts later read by fingerprint)."""
    k = sealing.write_key() if encrypt else None
    stored = sealing.seal(data, k) if k else data
    b = backend()
    b.put(key, stored)
    fingerprint = sha256_bytes(data)
    stored_fp = sha256_bytes(stored) if k else fingerprint
    if b.remote and cache:
        readcache.put(stored_fp, stored)
    return Written(relpath_of(key), fingerprint, stored_fp, len(data), k.id if k else None)


def write_stored(key: str, stored: bytes) -> None:
    """Put already-stored bytes (a rotation's new envelope) under `key`."""
    backend().put(key, stored)


def read_stored(relpath: str, label: str, *, stored_fingerprint: str | None = None) -> bytes:
    """The stored bytes (maybe sealed), from the cache when `stored_fingerprint` is known;
    a missing artifact is an ArtifactIntegrityError naming it."""
    b = backend()
    key = key_of(relpath)
    if b.remote:
        cached = readcache.get(stored_fingerprint)
        if cached is not None:
            return cached
    try:
        return b.get(key)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ArtifactMissingError(
            f"The artifact of {label} is missing ({b.where(key)}). Restore it from a backup of "
            "the artifact store or register it again.") from None


def _mismatch(label: str, expected: str, actual: str) -> ArtifactIntegrityError:
    return ArtifactIntegrityError(
        f"The artifact of {label} fails its fingerprint check (expected {expected[:12]}…, "
        f"found {actual[:12]}…): the file was modified or truncated after it was "
        "registered, so it will not be loaded or handed out. Register the model again.")


def read(relpath: str, label: str, *, fingerprint: str | None = None,
         stored_fingerprint: str | None = None) -> bytes:
    """The plaintext of an artifact, only once the fingerprints its row recorded match.

    Encrypted bytes: `stored_fingerprint` is checked before decrypting, the key's
    authentication while decrypting, `fingerprint` (the plaintext's) after. Plaintext bytes:
    `fingerprint` (the identity) or, for files whose identity is not their bytes (datasets),
    `stored_fingerprint`. Either may be None when the row never recorded it."""
    stored = read_stored(relpath, label, stored_fingerprint=stored_fingerprint)
    actual = sha256_bytes(stored)
    if sealing.is_sealed(stored):
        if stored_fingerprint and actual != stored_fingerprint:
            raise _mismatch(label, stored_fingerprint, actual)
        plain = sealing.unseal(stored, label)
        if fingerprint and (plain_fp := sha256_bytes(plain)) != fingerprint:
            raise _mismatch(label, fingerprint, plain_fp)
    else:
        expected = fingerprint or stored_fingerprint
        if expected and actual != expected:
            raise _mismatch(label, expected, actual)
        plain = stored
    if backend().remote and (fingerprint or stored_fingerprint):
        readcache.put(actual, stored)
    return plain


def delete(relpath: str) -> None:
    backend().delete(key_of(relpath))


def entries(prefix: str) -> list[Entry]:
    """Every stored file below `prefix` (a key prefix such as 'models/')."""
    return backend().find(prefix)


def size(key: str) -> int:
    return backend().size(key)


def head(key: str, n: int = sealing.HEADER_BYTES) -> bytes:
    return backend().head(key, n)


def copy(src_relpath: str, dst_key: str) -> None:
    backend().copy(key_of(src_relpath), dst_key)


def new_key(*parts: str, suffix: str) -> str:
    """A fresh, never reused key below `parts` (e.g. models/<name>/<uuid>.skops)."""
    return "/".join([*parts, f"{uuid.uuid4().hex}{suffix}"])
