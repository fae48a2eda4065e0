"""`workbench backup`: a consistent copy of the registry while servers and workers keep
writing.

SQLite: the online backup API (`sqlite3.Connection.backup`) copies one snapshot of the live
database, WAL included, into a single self-contained file (journal mode DELETE), which is
checked (`PRAGMA integrity_check`) before it is moved into place, so PATH is either a whole
backup or absent. With `with_artifacts`, PATH is a directory laid out like WORKBENCH_HOME
(`workbench.db` + `artifacts/`): the database is copied first, then the artifacts; artifacts
are written before the rows that name them and never modified, so every file the copied
database names is in the copy. PostgreSQL is backed up with its own tools (`pg_dump`).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import make_url

from core.errors import InputError, WorkbenchError
from core.fsutil import atomic_write, sha256_file
from core.settings import Settings
from core.store import artifacts as artifact_store
from core.store.db import refuse_emptied_database

DB_NAME = "workbench.db"


@dataclass
class BackupResult:
    path: Path
    database: Path
    models: int
    versions: int
    datasets: int
    artifacts: int | None = None  # files copied, when the artifacts are in the backup
    notes: list[str] = field(default_factory=list)


def pg_dump_hint(url: str, artifact_dir: Path) -> str:
    """How to back up a PostgreSQL registry (the password is never printed)."""
    u = make_url(url)
    conn = (f"--host {u.host or 'localhost'} --port {u.port or 5432} "
            f"--username {u.username or '$USER'} --dbname {u.database}")
    return ("The registry is in PostgreSQL, which `workbench backup` does not copy itself "
            "(only SQLite). Back it up with PostgreSQL's own tool, "
            f"`pg_dump --format=custom --file workbench.dump {conn}`, and copy the artifact "
            f"directory {artifact_dir} after it; restore with "
            f"`pg_restore --clean --if-exists {conn} workbench.dump` "
            "(see docs/trust/storage.md).")


def _sqlite_file(settings: Settings) -> Path:
    """The live SQLite file, refused when it is not there or emptied (never created here: a
    backup only reads)."""
    u = make_url(settings.db_url)
    if u.get_backend_name() != "sqlite":
        raise InputError(pg_dump_hint(settings.db_url, settings.artifact_dir))
    if not u.database or u.database == ":memory:":
        raise InputError("An in-memory database cannot be backed up.")
    source = Path(u.database)
    refuse_emptied_database(source, settings.artifact_dir)
    if not source.is_file():
        raise InputError(f"There is no registry at {source} to back up yet.")
    return source


def _check_target(path: Path, force: bool) -> None:
    if path.exists() and not force:
        raise InputError(f"{path} already exists: choose a new path, or pass --force to "
                         "replace it.")
    if not path.parent.is_dir():
        raise InputError(f"The directory {path.parent} does not exist: create it first.")


def _copy_database(source: Path, dest: Path, timeout_s: float) -> tuple[int, int, int]:
    """Online backup of `source` into the new file `dest`, made self-contained and checked.
    Returns (models, versions, datasets) counted in the copy."""
    src = sqlite3.connect(source, timeout=timeout_s)
    dst = sqlite3.connect(dest)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise WorkbenchError(f"The copy failed its integrity check ({check}); the live "
                                 "database may be damaged. Nothing was written.")
        return tuple(dst.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore
                     for t in ("registeredmodel", "modelversion", "dataset"))
    finally:
        dst.close()
        src.close()


def _verify_artifacts(db: Path, home: Path) -> list[str]:
    """Every model artifact and dataset file the copied database names, present and intact."""
    problems = []
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        # the stored bytes' fingerprint (encrypted files differ from their plaintext's), on a
        # store upgraded to 0012; before it, the plaintext's is the stored one
        stored = {r[1] for r in con.execute("PRAGMA table_info(modelversion)")} \
            >= {"stored_fingerprint"}
        fp = "COALESCE(v.stored_fingerprint, v.fingerprint)" if stored else "v.fingerprint"
        rows = [(f"model version {n}:{v}", p, f) for n, v, p, f in con.execute(
            f"SELECT m.name, v.version, v.artifact_path, {fp} FROM modelversion v "
            "JOIN registeredmodel m ON m.id = v.model_id")]
        ds_fp = "stored_fingerprint" if stored else "NULL"
        rows += [(f"dataset {i}", p, f) for i, p, f in con.execute(
            f"SELECT id, path, {ds_fp} FROM dataset")]
    finally:
        con.close()
    for label, rel, fingerprint in rows:
        path = home / rel
        if not path.is_file():
            problems.append(f"{label}: {rel} is missing")
        elif fingerprint and sha256_file(path) != fingerprint:
            problems.append(f"{label}: {rel} fails its fingerprint check")
    return problems


def _copy_artifacts(settings: Settings, dest: Path) -> int:
    """Every stored artifact into `dest`, laid out as WORKBENCH_HOME/artifacts is (from a
    directory or an object store alike; encrypted files stay encrypted). Returns the count."""
    b = artifact_store.backend(settings)
    root = getattr(b, "root", None)
    if root is not None:
        if not Path(root).is_dir():
            return 0
        shutil.copytree(root, dest, ignore=shutil.ignore_patterns(".*.tmp"))
        return sum(1 for p in dest.rglob("*") if p.is_file())
    entries = b.find("")
    for e in entries:
        atomic_write(dest / e.key, b.get(e.key))
    return len(entries)


def backup(path: Path, *, settings: Settings, force: bool = False,
           with_artifacts: bool = False) -> BackupResult:
    """Copy the live registry named by `settings` to `path` (a file; a directory with
    `with_artifacts`). A file-level copy: no engine or session is needed, and the copy keeps
    the schema revision it had (opening a restored store upgrades it)."""
    source = _sqlite_file(settings)
    path = path.expanduser().absolute()
    _check_target(path, force)
    live = path.resolve()
    if live in (source.resolve(), settings.home) or live.is_relative_to(settings.artifact_dir):
        raise InputError(f"{path} is part of the live store: choose a path outside "
                         f"{settings.home}.")
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    try:
        db = staging / DB_NAME
        models, versions, datasets = _copy_database(source, db, settings.sqlite_busy_timeout_s)
        result = BackupResult(path, path / DB_NAME if with_artifacts else path,
                              models, versions, datasets)
        if with_artifacts:
            result.artifacts = _copy_artifacts(settings, staging / "artifacts")
            problems = _verify_artifacts(db, staging)
            if problems:
                result.notes.append("The live store already lacks some files, so the backup "
                                    "does too: " + "; ".join(problems[:10]))
            _replace(staging, path)
        else:
            _replace(db, path)
            result.notes.append(
                f"The artifacts are not in this file: copy {settings.artifact_dir} beside it "
                "(after this command, so it holds every file the backup names), or use "
                "--with-artifacts.")
        return result
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _replace(new: Path, dest: Path) -> None:
    """Move the finished backup into place; an old one (--force) is removed only after."""
    old = None
    if dest.exists() or dest.is_symlink():
        old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
        os.replace(dest, old)
    os.replace(new, dest)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)
