"""Which raw database and OS errors mean "the storage cannot serve this call right now".

Drivers report a locked SQLite file, an unreachable PostgreSQL server and a full disk as
generic `OperationalError`s or `OSError`s, next to real bugs ("no such table" is an SQLite
OperationalError too). Adapters ask `storage_failure(exc)` at their edge and answer 503 +
Retry-After / exit 1 for these; everything else stays an internal error. Core code keeps
raising the raw errors, so its retry loops (jobs, alerts, telemetry) keep retrying them.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3

from sqlalchemy import exc as sa_exc

from core.errors import StorageUnavailableError
from core.settings import get_settings

# SQLite's messages for a condition of the file, not of the SQL (sqlite3_errstr texts).
_SQLITE_BUSY = ("database is locked", "database table is locked", "database schema is locked")
_SQLITE_FULL = ("database or disk is full",)
_SQLITE_IO = ("disk i/o error", "unable to open database file", "locking protocol")
_DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
DONE_NOTHING = "The operation did not complete and nothing half-written was kept"


def _busy_timeout() -> str:
    try:
        return f"{get_settings().sqlite_busy_timeout_s:g} s"
    except Exception:  # a bad setting is reported elsewhere
        return "the busy timeout"


def _disk_nearly_full() -> bool:
    """SQLite reports a full disk as a plain I/O error when the WAL index or journal cannot
    grow; the free space on WORKBENCH_HOME's file system tells the two apart."""
    try:
        home = get_settings().home
        while not home.exists() and home != home.parent:
            home = home.parent
        return shutil.disk_usage(home).free < 1024 * 1024
    except Exception:
        return False


def _from_sqlite(message: str) -> StorageUnavailableError | None:
    low = message.lower()
    if low.startswith(_SQLITE_BUSY):
        return StorageUnavailableError(
            f"The database is busy: another process held its write lock longer than "
            f"{_busy_timeout()} (WORKBENCH_SQLITE_BUSY_TIMEOUT_S). {DONE_NOTHING}; try again "
            "shortly.")
    if low.startswith(_SQLITE_FULL):
        return StorageUnavailableError(
            f"The disk holding the database is full ({message}). {DONE_NOTHING}; free some "
            "space, then try again.", retry_after_s=30)
    if low.startswith(_SQLITE_IO) and _disk_nearly_full():
        return StorageUnavailableError(
            f"The disk holding the database is full ({message}). {DONE_NOTHING}; free some "
            "space, then try again.", retry_after_s=30)
    if low.startswith(_SQLITE_IO):
        return StorageUnavailableError(
            f"The database file cannot be read or written ({message}). {DONE_NOTHING}; check "
            "the disk and the permissions of WORKBENCH_HOME, then try again.", retry_after_s=30)
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _classify(exc: BaseException) -> StorageUnavailableError | None:
    if isinstance(exc, StorageUnavailableError):
        return exc
    if isinstance(exc, sqlite3.OperationalError):
        return _from_sqlite(str(exc))
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS:
        return StorageUnavailableError(
            f"The disk is full ({exc.strerror or exc}). {DONE_NOTHING}; free some space in "
            "WORKBENCH_HOME, then try again.", retry_after_s=30)
    if isinstance(exc, sa_exc.TimeoutError):  # no pooled connection became free in time
        return StorageUnavailableError(
            f"Every database connection is busy. {DONE_NOTHING}; try again shortly.")
    if isinstance(exc, sa_exc.DBAPIError):
        orig = exc.orig
        if isinstance(orig, sqlite3.OperationalError):
            return _from_sqlite(str(orig))
        if exc.connection_invalidated or _is_psycopg_operational(orig):
            return StorageUnavailableError(
                f"The database server is unavailable ({_first_line(orig or exc)}). "
                f"{DONE_NOTHING}; check that it is running and that DATABASE_URL points at "
                "it, then try again.", retry_after_s=10)
    return None


def _is_psycopg_operational(orig: BaseException | None) -> bool:
    """psycopg's OperationalError: connection refused or lost, server shutting down, disk
    full (class 53), lock or statement timeouts, serialisation failures: all conditions of
    the server that a later retry can clear. SQL mistakes are ProgrammingError instead."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - PostgreSQL support not installed
        return False
    return isinstance(orig, psycopg.OperationalError)


def storage_failure(exc: BaseException) -> StorageUnavailableError | None:
    """A StorageUnavailableError describing `exc` (or an error it was raised from), or None
    when `exc` is not a storage condition (a bug or a user mistake)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        found = _classify(current)
        if found is not None:
            return found
        current = current.__cause__ or current.__context__
    return None
