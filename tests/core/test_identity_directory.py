"""The users-and-keys snapshot a server process checks credentials against
(core/identity/directory.py): kept fresh in the background, so requests do not reload it,
and never trusted past its age."""

from __future__ import annotations

import time

import pytest
from sqlmodel import Session

from core.identity.directory import Directory, load
from core.identity.users import add_user
from core.store import Database


@pytest.mark.serial  # timed: it sleeps through the snapshot's age
def test_keep_fresh_reloads_before_the_snapshot_goes_stale(
        backend_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_PASSWORD_HASH_COST", "cheapest")
    with Session(backend_db.engine) as s:  # the first connection (PostgreSQL: ~1 s) apart
        load(s)
    directory = Directory(backend_db, refresh_s=2.0)
    directory.keep_fresh()  # nobody asked for it yet: an idle server does not query
    assert directory._snapshot is None
    assert directory.current() is None  # nothing loaded: a request would reload
    directory.keep_fresh()
    first = directory.current()
    assert first is not None and first.user("ann", 1) is None
    directory.keep_fresh()  # young: not reloaded
    assert directory.current() is first
    with Session(backend_db.engine) as s:
        add_user("ann", "password-1", role="viewer", session=s, actor="boss")
    # called every quarter of refresh_s, as the API's loop does: never stale in between,
    # and the new user is known within refresh_s (a reload from 1.5 s of age)
    deadline = time.monotonic() + 2.4
    while time.monotonic() < deadline:
        directory.keep_fresh()
        assert directory.current() is not None  # a request asks
        time.sleep(0.2)
    assert directory.current().user("ann", 1) is not None
    time.sleep(2.1)  # nobody kept it fresh: past its age it is not trusted
    assert directory.current() is None
