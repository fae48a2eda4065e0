"""API keys: shown once, stored as a hash, found by prefix, revoked for good (on SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

from core.errors import ConflictError, NotFoundError
from core.identity import PrincipalKind, Role
from core.identity.directory import load
from core.identity.keys import create_key, list_keys, resolve, revoke_key
from core.identity.workspaces import add_workspace
from core.store import Database
from core.store.identity import ApiKey


@pytest.fixture
def s(backend_db: Database) -> Iterator[Session]:
    with Session(backend_db.engine, expire_on_commit=False) as session:
        yield session


def test_a_key_is_shown_once_and_stored_only_as_a_hash(s: Session) -> None:
    add_workspace("team-a", session=s)  # keys belong to existing workspaces only
    created = create_key("ci", role="editor", workspace="team-a", session=s, actor="boss")
    key = created.key
    assert key.startswith("wbk_" + created.info.prefix + "_") and len(key) > 50
    row = s.exec(select(ApiKey)).one()
    assert key not in (row.hash, row.prefix, row.name) and len(row.hash) == 64
    assert "key" not in created.info.model_dump()  # the listing shape never carries it
    who = resolve(s, key)
    assert who is not None and (who.actor, who.role, who.workspace, who.kind) == (
        "ci", Role.EDITOR, "team-a", PrincipalKind.KEY)
    assert load(s).key(key) == who  # the API's snapshot says the same
    assert resolve(s, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    assert resolve(s, "wbk_" + created.info.prefix + "_guess") is None


def test_a_revoked_key_stops_working_and_its_name_can_be_reused(s: Session) -> None:
    key = create_key("ci", role="viewer", session=s).key
    with pytest.raises(ConflictError, match="revoke it first"):
        create_key("ci", role="viewer", session=s)
    revoke_key("ci", session=s, reason="leaked")
    assert resolve(s, key) is None and load(s).key(key) is None
    with pytest.raises(NotFoundError, match="no active key 'ci'"):
        revoke_key("ci", session=s)
    again = create_key("ci", role="viewer", session=s).key
    assert resolve(s, again) is not None
    assert [k.revoked_at is None for k in list_keys(session=s, include_revoked=True)] == [
        False, True]
    assert len(list_keys(session=s)) == 1
