"""Engine, sessions and schema upgrades.

SQLite (the zero set-up default) runs in WAL mode with a busy timeout so the app, the API and
workers can share one file; PostgreSQL is used as is. The schema is always brought to the
latest Alembic revision before first use, so upgrading the package never loses a registry.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, create_engine

from core.errors import DamagedStoreError
from core.settings import Settings, get_settings
from core.store.scope import scope

MIGRATIONS_DIR = Path(__file__).resolve().parents[1] / "migrations"


def _sqlite_pragmas(busy_timeout_s: float):
    def on_connect(dbapi_conn, _record) -> None:
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    return on_connect


def refuse_emptied_database(db_file: Path, artifact_dir: Path) -> None:
    """A 0-byte database beside stored artifacts is a registry that was lost (truncated by a
    full disk, a bad copy, a restore gone wrong): SQLite would silently start a new, empty
    one over it and orphan every model. A brand-new home (no artifacts) is created as ever."""
    if not db_file.is_file() or db_file.stat().st_size > 0 or not artifact_dir.is_dir():
        return
    stored = sum(1 for p in artifact_dir.rglob("*") if p.is_file())
    if stored:
        raise DamagedStoreError(
            f"The database {db_file} is empty (0 bytes) but {artifact_dir} holds {stored} "
            "stored file(s) of an existing registry; starting a new, empty registry over it "
            "would lose track of them, so the workbench refuses. Restore the database from a "
            "backup (`workbench backup`; see docs/trust/storage.md), or to really start over "
            f"move both {db_file.name} and {artifact_dir.name}/ out of {db_file.parent}.")


def make_engine(url: str, settings: Settings | None = None) -> Engine:
    settings = settings or get_settings()
    if url.startswith("sqlite"):
        db_path = url.split("///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
            refuse_emptied_database(Path(db_path), settings.artifact_dir)
        # No prepared-statement cache: sqlite3 keeps each cached statement's last bound
        # values, and the flush's multi-row INSERTs (a different statement for every row
        # count) each held up to 1,000 logged requests' rows: a logging server grew by
        # gigabytes (docs/serving/session18.md). Preparing costs ~10 µs a statement (the
        # prediction path reads its state from memory); SQLAlchemy still caches the SQL.
        engine = create_engine(
            url, connect_args={"timeout": settings.sqlite_busy_timeout_s,
                               "check_same_thread": False, "cached_statements": 0}
        )
        event.listen(engine, "connect", _sqlite_pragmas(settings.sqlite_busy_timeout_s))
        # Many rows inserted at once (the telemetry flush) go as multi-row INSERTs of up to
        # 1,000 rows, not one statement per row: sqlite3 releases and retakes the GIL around
        # every statement, and a flush thread beside a busy event loop waited its turn per
        # row, fell behind the requests and buffered without bound (docs/serving/session18.md).
        engine.dialect.use_insertmanyvalues_wo_returning = True
    else:
        engine = create_engine(url, pool_pre_ping=True)
    return engine


def upgrade_schema(engine: Engine) -> None:
    """Run Alembic migrations to head on this engine."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # SQLite migrations rebuild tables (copy, drop, rename): with foreign keys on,
            # dropping a table that other rows point at fails and the store cannot upgrade.
            # The pragma only takes effect outside a transaction; the check below proves
            # the rebuilt tables still satisfy every key before the upgrade commits.
            _set_sqlite_foreign_keys(conn, on=False)
        try:
            with conn.begin():
                # Serialise concurrent first starts (several workers, threads or processes):
                # the second one waits, then finds the schema at head and has nothing to do.
                if sqlite:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                else:
                    conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7262001)")
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
                if sqlite:
                    _refuse_broken_references(conn)
        finally:
            if sqlite:
                _set_sqlite_foreign_keys(conn, on=True)


def _set_sqlite_foreign_keys(conn, *, on: bool) -> None:
    conn.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
    conn.commit()


def _refuse_broken_references(conn) -> None:
    """Roll the upgrade back (by raising) if it left a row pointing at a missing one."""
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise DamagedStoreError(
            f"Upgrading the database would leave rows of {', '.join(tables)} pointing at rows "
            "that do not exist, so nothing was changed. Restore a backup (`workbench backup`; "
            "see docs/trust/storage.md) or report this with the database file.")


class Database:
    """The engine of one store (migrated to head on first use) and its units of work.

    Built once by each adapter's composition root (the API's lifespan, the CLI's `main`,
    `app/ui/deps.py`, a worker's entry point) and passed down: core use cases take
    `*, session` and never build their own engine, so one use case can compose others in
    a single transaction, and tests build a fresh one per home instead of resetting globals.
    Long-running loops (workers, the serving runtime, the monitor) take the `Database` itself
    and open one short `session()` per unit of work."""

    def __init__(self, url: str | None = None, *, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()
        self.url = url or self.settings.db_url
        self._engine: Engine | None = None
        self._engine_lock = threading.Lock()
        self.workspace: str | None = None  # what `session()` scopes to (None: unscoped)
        self._shared: Database | None = None  # `in_workspace` views share this one's engine

    def in_workspace(self, workspace: str | None) -> Database:
        """This store seen from one workspace: same engine, every `session()` scoped to it
        (core/store/scope.py). Cheap (no I/O): adapters make one per caller."""
        if workspace == self.workspace:
            return self
        base = self._shared or self
        view = Database.__new__(Database)
        view.settings, view.url, view._engine_lock = base.settings, base.url, base._engine_lock
        view._engine, view._shared, view.workspace = None, base, workspace
        return view

    @property
    def engine(self) -> Engine:
        """Built and migrated on first use, not when the adapter starts: a server whose
        database is down still starts and answers /health, and every request gets the
        "unavailable" answer (and a retry) instead of a process that never came up."""
        if self._shared is not None:
            return self._shared.engine
        if self._engine is None:
            with self._engine_lock:
                if self._engine is None:
                    engine = make_engine(self.url, self.settings)
                    try:
                        upgrade_schema(engine)
                    except BaseException:
                        engine.dispose()
                        raise
                    self._engine = engine
        return self._engine

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self, *, write: bool = False, workspace: str | None = None
                ) -> Iterator[Session]:
        """A unit of work: committed on success, rolled back on any error (no half-written
        rows). `write=True` takes the write lock up front (see `lock_for_write`). Scoped to
        `workspace`, else to this view's workspace, else unscoped (internal loops only)."""
        with Session(self.engine, expire_on_commit=False) as session:
            scope(session, workspace or self.workspace)
            try:
                if write:
                    lock_for_write(session)
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    @contextmanager
    def exclusive(self, name: str) -> Iterator[bool]:
        """Yields True in at most one process at a time for `name` (False elsewhere, at once).

        PostgreSQL: a session-level advisory lock, released on exit or when the holder's
        connection dies. SQLite: always True, since its writers are serialised by BEGIN
        IMMEDIATE (`lock_for_write`) on the one machine that holds the file."""
        if self.engine.dialect.name != "postgresql":
            yield True
            return
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with self.engine.connect() as conn:
            got = bool(conn.exec_driver_sql("SELECT pg_try_advisory_lock(%s)", (key,)).scalar())
            conn.commit()
            try:
                yield got
            finally:
                if got:
                    conn.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (key,))
                    conn.commit()

    def dispose(self) -> None:
        if self._shared is not None:
            return  # a view: its base owns the engine
        if self._engine is not None:
            self._engine.dispose()


def lock_for_write(session: Session) -> None:
    """Take SQLite's write lock now (BEGIN IMMEDIATE) for a read-then-write use case.

    A transaction that reads first and upgrades its lock later can fail with "database is
    locked" at once, whereas an immediate one waits for the busy timeout like any other
    writer. Call it first thing in a use case that writes; a no-op on PostgreSQL (row locks
    do that job there) and when this session already holds the lock."""
    conn = session.connection()  # begins the session's transaction if none is open
    tx = session.get_transaction()
    if session.info.get("write_locked_tx") is tx:
        return
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    session.info["write_locked_tx"] = tx
