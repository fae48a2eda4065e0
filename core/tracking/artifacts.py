"""A run's artifacts: files under WORKBENCH_HOME/artifacts/runs/<run id>/, written atomically.

`resolve_artifact` is the one way from a caller's path to a file: a path that is not a plain
relative path of named segments, or that resolves (through any symlink) outside the run's
root, or names no file, is "not found" — the same answer as a missing file, so a probe learns
nothing about the disk (ARCHITECTURE.md: any path that resolves outside the root is a 404)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

from sqlmodel import Session

from core.errors import NotFoundError
from core.fsutil import atomic_write
from core.settings import get_settings
from core.tracking.checks import BadInput
from core.tracking.public import ArtifactPublic
from core.tracking.runs import get_run_row

PATH_MAX = 1000
# '%' (an encoding left over after the server decoded the path once: %2e, %252e), '\' (a
# Windows separator), '#' and '?' (URL fragment and query tricks), ':' (drive letters, streams)
_REFUSED = frozenset("%\\#?:")


def run_root(run_id: int) -> Path:
    return get_settings().artifact_dir / "runs" / str(int(run_id))


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
    """A run's artifact for download (NotFoundError for an unknown run or path)."""
    get_run_row(run_id, session=session)
    return resolve_artifact(run_id, path)


def list_artifacts(run_id: int, *, session: Session) -> list[ArtifactPublic]:
    """Every file of the run, sorted by path; links that lead outside the root are left out."""
    get_run_row(run_id, session=session)
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
            out.append(ArtifactPublic(path=rel, size_bytes=target.stat().st_size))
    return sorted(out, key=lambda a: a.path)


def write_artifact(run_id: int, name: str, data: bytes | Path) -> ArtifactPublic:
    """Store bytes, or a copy of a file, as `name` under the run's root (atomically; an
    existing artifact of that name is replaced). `name` follows the download rules."""
    target = _write_target(run_id, name)
    if isinstance(data, Path):
        if not data.is_file():
            raise BadInput(f"{data} is not a file to log as an artifact.")
        data = data.read_bytes()
    atomic_write(target, bytes(data))
    return ArtifactPublic(path=name, size_bytes=len(data))


def link_artifact(run_id: int, name: str, source: Path) -> ArtifactPublic:
    """`source` (an immutable stored file, e.g. a registered pipeline) as `name`: a hard link
    where the filesystem allows (no second copy), else a copy."""
    target = _write_target(run_id, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
    return ArtifactPublic(path=name, size_bytes=target.stat().st_size)


def _write_target(run_id: int, name: str) -> Path:
    """Where `name` is written: under the run's root, also once symlinks are followed (a
    linked folder inside the root must not carry a write outside it, as it cannot a read)."""
    rel = clean_relpath(name)
    if rel is None:
        raise BadInput(f"name: {name!r} is not an artifact path; use '/'-separated names "
                       "without '.', '..', empty parts, '%', '\\', '#', '?', ':' or control "
                       "characters (e.g. 'plots/loss.png').")
    root = run_root(run_id)
    if not (root / rel).parent.resolve().is_relative_to(root.resolve()):
        raise BadInput(f"name: {name!r} leads outside run {run_id}'s artifact folder through "
                       "a symbolic link; log it under another name.")
    return root / rel
