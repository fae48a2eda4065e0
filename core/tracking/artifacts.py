"""A run's artifacts: files under <artifact store>/runs/<run id>/, written atomically through
the artifact store (core.store.artifacts: a directory or an object store, encrypted when
WORKBENCH_ARTIFACT_KEY is set).

`resolve_artifact` is the one way from a caller's path to a file: a path that is not a plain
relative path of named segments, or that resolves (through any symlink) outside the run's
root, or names no file, is "not found" — the same answer as a missing file, so a probe learns
nothing about the disk (ARCHITECTURE.md: any path that resolves outside the root is a 404).
On an object store there are no links: the check of the path's segments is the whole rule."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from sqlmodel import Session

from core.errors import NotFoundError
from core.settings import get_settings
from core.store import artifacts as store
from core.store import sealing
from core.tracking.checks import BadInput
from core.tracking.public import ArtifactPublic
from core.tracking.runs import get_run_row

PATH_MAX = 1000
# '%' (an encoding left over after the server decoded the path once: %2e, %252e), '\' (a
# Windows separator), '#' and '?' (URL fragment and query tricks), ':' (drive letters, streams)
_REFUSED = frozenset("%\\#?:")


def _run_key(run_id: int) -> str:
    return f"runs/{int(run_id)}"


def run_root(run_id: int) -> Path:
    """The run's folder when the store is a directory (on an object store: where it would
    be under WORKBENCH_HOME, never created)."""
    return store.local_path(store.relpath_of(_run_key(run_id))) or \
        get_settings().artifact_dir / "runs" / str(int(run_id))


def clean_relpath(path: object) -> PurePosixPath | None:
    """The path as named segments below a root, or None when it is anything else: empty,
    absolute, with `.`/`..`/empty segments, control characters (NUL), or a refused
    character (see _REFUSED)."""
    if not isinstance(path, str) or not path or len(path) > PATH_MAX:
        return None
    if any(ch in _REFUSED or ord(ch) < 32 or ord(ch) == 127 for ch in path):
        return None
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):  # also "/abs", "a//b", "a/"
        return None
    return PurePosixPath(*parts)


def resolve_artifact(run_id: int, path: str) -> Path:
    """The file `path` names under the run's root; NotFoundError for anything else."""
    rel = clean_relpath(path)
    root = run_root(run_id).resolve()
    if rel is not None:
        target = (root / rel).resolve()
        if target.is_relative_to(root) and target.is_file():
            return target
    raise NotFoundError(f"Run {run_id} has no artifact {path!r}. List its artifacts with "
                        f"GET /v1/runs/{run_id}/artifacts.")


def artifact_file(run_id: int, path: str, *, session: Session) -> Path:
    """A run's artifact as a local file (a directory store only; NotFoundError for an
    unknown run or path). Downloads use `read_artifact`, which works on every store and
    decrypts."""
    get_run_row(run_id, session=session)
    return resolve_artifact(run_id, path)


def _key_for_reading(run_id: int, path: str) -> str:
    if store.local_path(store.relpath_of(_run_key(run_id))) is not None:
        target = resolve_artifact(run_id, path)  # the symlink rules of a directory
        rel = target.relative_to(run_root(run_id).resolve()).as_posix()
    else:
        clean = clean_relpath(path)
        if clean is None:
            raise _not_found(run_id, path)
        rel = clean.as_posix()
    return f"{_run_key(run_id)}/{rel}"


def _not_found(run_id: int, path: str) -> NotFoundError:
    return NotFoundError(f"Run {run_id} has no artifact {path!r}. List its artifacts with "
                         f"GET /v1/runs/{run_id}/artifacts.")


def read_artifact(run_id: int, path: str, *, session: Session) -> tuple[str, bytes]:
    """A run's artifact for download: (file name, plaintext bytes); NotFoundError for an
    unknown run or path, ArtifactIntegrityError for bytes that fail authentication."""
    get_run_row(run_id, session=session)
    key = _key_for_reading(run_id, path)
    try:
        data = store.read(store.relpath_of(key), f"artifact {path!r} of run {run_id}")
    except store.ArtifactMissingError:
        raise _not_found(run_id, path) from None
    return PurePosixPath(key).name, data


def _plain_size(key: str, size: int) -> int:
    """The size a download has: a sealed file's envelope is not part of it."""
    if size < sealing.OVERHEAD:
        return size
    try:
        return size - sealing.OVERHEAD if sealing.is_sealed(store.head(key)) else size
    except OSError:
        return size


def list_artifacts(run_id: int, *, session: Session) -> list[ArtifactPublic]:
    """Every file of the run, sorted by path; links that lead outside the root are left out."""
    get_run_row(run_id, session=session)
    prefix = _run_key(run_id) + "/"
    if store.local_path(store.relpath_of(prefix)) is None:
        out = [ArtifactPublic(path=e.key[len(prefix):], size_bytes=_plain_size(e.key, e.size))
               for e in store.entries(prefix) if clean_relpath(e.key[len(prefix):])]
        return sorted(out, key=lambda a: a.path)
    root = run_root(run_id).resolve()
    if not root.is_dir():
        return []
    out = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            rel = (Path(dirpath) / name).relative_to(root).as_posix()
            if name.startswith(".") and name.endswith(".tmp"):  # an atomic write under way
                continue
            try:
                target = resolve_artifact(run_id, rel)
            except NotFoundError:
                continue
            out.append(ArtifactPublic(path=rel, size_bytes=_plain_size(
                prefix + target.relative_to(root).as_posix(), target.stat().st_size)))
    return sorted(out, key=lambda a: a.path)


def write_artifact(run_id: int, name: str, data: bytes | Path) -> ArtifactPublic:
    """Store bytes, or a copy of a file, as `name` under the run's root (atomically; an
    existing artifact of that name is replaced). `name` follows the download rules."""
    key = _write_key(run_id, name)
    if isinstance(data, Path):
        if not data.is_file():
            raise BadInput(f"{data} is not a file to log as an artifact.")
        data = data.read_bytes()
    store.write(key, bytes(data), cache=False)  # read back by path, not by fingerprint
    return ArtifactPublic(path=name, size_bytes=len(data))


def link_artifact(run_id: int, name: str, source_relpath: str) -> ArtifactPublic:
    """A stored file (immutable, e.g. a registered pipeline, named by its row's path) as
    `name`: a hard link on a directory where the filesystem allows, a server-side copy on an
    object store. Its bytes are the stored ones (still encrypted if they are)."""
    key = _write_key(run_id, name)
    store.copy(source_relpath, key)
    return ArtifactPublic(path=name, size_bytes=_plain_size(key, store.size(key)))


def _write_key(run_id: int, name: str) -> str:
    """Where `name` is written: under the run's root, also once symlinks are followed (a
    linked folder inside the root must not carry a write outside it, as it cannot a read)."""
    rel = clean_relpath(name)
    if rel is None:
        raise BadInput(f"name: {name!r} is not an artifact path; use '/'-separated names "
                       "without '.', '..', empty parts, '%', '\\', '#', '?', ':' or control "
                       "characters (e.g. 'plots/loss.png').")
    root = store.local_path(store.relpath_of(_run_key(run_id)))
    if root is not None and not (root / rel).parent.resolve().is_relative_to(root.resolve()):
        raise BadInput(f"name: {name!r} leads outside run {run_id}'s artifact folder through "
                       "a symbolic link; log it under another name.")
    return f"{_run_key(run_id)}/{rel.as_posix()}"
