"""Users: added, listed, removed, given a new password or role, each change bumping the
revision that issued tokens are checked against; sign-in by name and password (on SQLite and
PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session, select

from core.errors import ConflictError, InputError, NotFoundError
from core.identity import PrincipalKind, Role
from core.identity.users import (
    add_user,
    authenticate,
    list_users,
    remove_user,
    revision_of,
    set_password,
    set_role,
)
from core.identity.workspaces import add_workspace
from core.store import AuditEvent, Database
from core.store.identity import User


@pytest.fixture
def s(backend_db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    monkeypatch.setenv("WORKBENCH_PASSWORD_HASH_COST", "cheapest")
    with Session(backend_db.engine, expire_on_commit=False) as session:
        yield session


def test_a_user_signs_in_with_the_right_password_only(s: Session) -> None:
    add_workspace("team-a", session=s)  # users belong to existing workspaces only
    info = add_user("ann", "password-1", role="editor", workspace="team-a", session=s,
                    actor="boss")
    assert (info.name, info.role, info.workspace, info.revision) == ("ann", Role.EDITOR,
                                                                     "team-a", 1)
    who = authenticate(s, "ann", "password-1")
    assert who is not None and (who.actor, who.role, who.workspace, who.kind) == (
        "ann", Role.EDITOR, "team-a", PrincipalKind.USER)
    assert authenticate(s, "ann", "password-2") is None
    assert authenticate(s, "bob", "password-1") is None
    stored = s.exec(select(User)).one().password_hash
    assert "password-1" not in stored and stored.startswith("$argon2")


def test_every_change_bumps_the_revision_and_is_audited(s: Session) -> None:
    add_user("ann", "password-1", role="viewer", session=s, actor="boss")
    assert set_role("ann", "editor", session=s, actor="boss").revision == 2
    assert set_role("ann", "editor", session=s).revision == 2  # no change, same tokens
    assert set_password("ann", "password-2", session=s, actor="boss").revision == 3
    assert authenticate(s, "ann", "password-1") is None
    assert authenticate(s, "ann", "password-2") is not None
    remove_user("ann", session=s, actor="boss", reason="left")
    assert list_users(session=s) == [] and revision_of(s, "ann") is None
    assert authenticate(s, "ann", "password-2") is None
    events = s.exec(select(AuditEvent).order_by(AuditEvent.id)).all()
    assert [(e.action, e.entity, e.actor) for e in events] == [
        ("user.add", "user:ann", "boss"), ("user.role", "user:ann", "boss"),
        ("user.passwd", "user:ann", "boss"), ("user.remove", "user:ann", "boss")]
    assert all("password" not in str(e.detail) for e in events)
    # the same name added again starts above every revision its tokens ever carried
    assert add_user("ann", "password-3", role="viewer", session=s).revision == 5


def test_names_roles_and_duplicates_are_refused_clearly(s: Session) -> None:
    add_user("ann", "password-1", role="viewer", session=s)
    with pytest.raises(ConflictError, match="exists already"):
        add_user("ann", "password-1", role="viewer", session=s)
    with pytest.raises(InputError, match="not a role: use one of viewer, editor, admin"):
        add_user("bob", "password-1", role="owner", session=s)
    with pytest.raises(InputError, match="not a valid user name"):
        add_user("bad name", "password-1", role="viewer", session=s)
    with pytest.raises(NotFoundError, match="no user 'zed'"):
        remove_user("zed", session=s)
    assert [u.name for u in list_users(session=s)] == ["ann"]
    assert [u.name for u in list_users(session=s, workspace="other")] == []


def test_a_token_names_the_user_only_while_they_are_unchanged(s: Session) -> None:
    from core.errors import UnauthorizedError
    from core.identity.tokens import principal_of, sign_in

    add_workspace("team-a", session=s)
    add_user("ann", "password-1", role="viewer", workspace="team-a", session=s)
    token = sign_in("ann", "password-1", session=s).access_token
    who = principal_of(token, session=s)
    assert (who.actor, who.role, who.workspace) == ("ann", Role.VIEWER, "team-a")
    with pytest.raises(UnauthorizedError, match="Wrong user name or password"):
        sign_in("ann", "password-2", session=s)
    set_role("ann", "editor", session=s)
    with pytest.raises(UnauthorizedError, match="sign in again"):
        principal_of(token, session=s)
