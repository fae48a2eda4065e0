"""Many rows into one SQLite table below SQLAlchemy's per-row parameter processing.

The serving flush writes a row per prediction request. Through SQLAlchemy each row's
parameters are built and processed one at a time in Python (`construct_params`, a date
formatter per datetime, a time-zone check per datetime): on a loaded one-row server that was
most of the flush thread's GIL time, taken from the event loop (docs/serving/session19.md).
Here the caller gives rows as tuples already in SQLite's stored form (`sqlite_datetime`,
JSON text), and they go out as multi-row INSERTs (as `core.store.db.make_engine` has
SQLAlchemy do: sqlite3 retakes the GIL once per statement, not per row), in the session's own
transaction. Only for SQLite; PostgreSQL keeps SQLAlchemy's path, whose types it needs."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table
from sqlmodel import Session

# SQLite refuses a statement with more bound values than this (999 before 3.32)
MAX_VARIABLES = 32766 if sqlite3.sqlite_version_info >= (3, 32) else 999
MAX_ROWS_PER_STATEMENT = 1000


def is_sqlite(s: Session) -> bool:
    return s.get_bind().dialect.name == "sqlite"


def sqlite_datetime(value: datetime | None) -> str | None:
    """The text SQLAlchemy's SQLite DateTime writes for an aware datetime (sqlmodel's
    UTCDateTime: UTC, no offset, always six digits of microseconds)."""
    if value is None:
        return None
    if value.utcoffset() is None:
        raise ValueError("a stored datetime needs its time zone (core.store.utcnow)")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def insert_rows(s: Session, table: Table, columns: Sequence[str],
                rows: Sequence[tuple[Any, ...]]) -> None:
    """INSERT `rows` (tuples of `columns`' stored values, in that order) into `table`."""
    if not rows:
        return
    quote = s.get_bind().dialect.identifier_preparer.quote
    head = (f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "
            "VALUES ")
    one = f"({', '.join('?' * len(columns))})"
    per = max(1, min(MAX_ROWS_PER_STATEMENT, MAX_VARIABLES // len(columns)))
    connection = s.connection()
    for start in range(0, len(rows), per):
        chunk = rows[start:start + per]
        values = tuple(itertools.chain.from_iterable(chunk))
        connection.exec_driver_sql(head + ", ".join([one] * len(chunk)), values)
