"""`GET /health` never waits on the store: with the SQLite database held under an exclusive
lock by another connection (and a busy timeout far longer than the wait below), a probe
still answers while the lock is held. Before, a stale users-and-keys snapshot made the
public route reload it from the store first."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.api import create_app
from core.identity import Role
from core.identity.keys import create_key
from core.store import Database


def test_health_answers_while_the_store_is_locked(home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_SQLITE_BUSY_TIMEOUT_S", "120")
    db = Database()
    with Session(db.engine) as s:
        create_key("probe", role=Role.VIEWER, session=s)
    path = db.engine.url.database
    try:
        with TestClient(create_app(background=False, db=db)) as c:
            assert c.get("/health").status_code == 200
            with Session(db.engine) as s:  # a change in this process: the snapshot is old
                create_key("second", role=Role.VIEWER, session=s)
            db.engine.dispose()  # no pooled connection keeps the file open
            lock = sqlite3.connect(path, isolation_level=None)
            lock.execute("PRAGMA locking_mode=EXCLUSIVE")
            lock.execute("BEGIN EXCLUSIVE")
            lock.execute("CREATE TABLE held_lock (x INTEGER)")
            answers: list[int] = []
            probe = threading.Thread(target=lambda: answers.append(
                c.get("/health").status_code))
            try:
                probe.start()
                probe.join(timeout=60)  # generous: the store would hold it for 120 s
                assert answers == [200]  # answered while the lock is still held
            finally:
                lock.execute("ROLLBACK")
                lock.close()
                probe.join(timeout=150)
    finally:
        db.dispose()
