"""0012_identity: a store from before users existed upgrades with its data and stays in
single-user mode until someone adds a user or a key (SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from core.identity.directory import load
from core.store import Database
from tests.factories import store_at

pytestmark = pytest.mark.empty_home  # they build old stores where the home's file goes


def test_an_old_store_upgrades_into_single_user_mode(backend: str) -> None:
    store_at("0011_tracking", [
        "INSERT INTO experiment (name, description, created_at) VALUES ('churn', '', "
        "CURRENT_TIMESTAMP)"])
    db = Database()  # upgrades to head on first use
    try:
        with Session(db.engine) as s:
            snap = load(s)
            from core.tracking.experiments import list_experiments

            names = [e.name for e in list_experiments(session=s)]
    finally:
        db.dispose()
    assert not snap.configured and snap.users == {} and snap.keys == {}
    assert "churn" in names
