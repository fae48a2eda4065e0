"""Users: people who sign in with a password (`workbench users add|list|remove|passwd|role`).

Every change that must end the tokens already issued (remove, role change, new password)
bumps the user's `revision`; tokens carry the revision they were issued at and stop working
when it no longer matches (core/identity/directory.py). Removed users keep their row, so a
name added again starts at a higher revision than any token ever issued for it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, select

from core.errors import ConflictError, NotFoundError
from core.identity import directory, passwords
from core.identity.naming import check_name, parse_role
from core.identity.principal import DEFAULT_WORKSPACE, Principal, PrincipalKind, Role
from core.identity.workspaces import require_workspace
from core.store.audit import record
from core.store.db import lock_for_write
from core.store.identity import User
from core.store.tables import utcnow


class UserInfo(BaseModel):
    """What may be shown about a user (never the hash)."""

    name: str
    role: Role
    workspace: str
    revision: int
    created_at: datetime

    @classmethod
    def of(cls, u: User) -> UserInfo:
        return cls(name=u.name, role=Role(u.role), workspace=u.workspace,
                   revision=u.revision, created_at=u.created_at)


def _active(session: Session, name: str) -> User:
    user = session.exec(select(User).where(User.name == name,
                                           User.removed_at.is_(None))).first()
    if user is None:
        raise NotFoundError(f"There is no user {name!r}; `workbench users list` shows them.")
    return user


def _commit(session: Session) -> None:
    session.commit()
    directory.changed()  # this process stops accepting the old revision at once


def add_user(name: str, password: str, *, role: Role | str, session: Session,
             workspace: str = DEFAULT_WORKSPACE, actor: str | None = None) -> UserInfo:
    """Add a user (or bring back a removed one under a new revision)."""
    name = check_name(name, "user")
    workspace = require_workspace(workspace, session=session)
    role = parse_role(role)
    pw_hash = passwords.hash_password(password)
    lock_for_write(session)
    user = session.exec(select(User).where(User.name == name)).first()
    if user is not None and user.removed_at is None:
        raise ConflictError(f"The user {name!r} exists already; change it with `workbench "
                            "users passwd` or `workbench users role`, or remove it first.")
    if user is None:
        user = User(name=name, password_hash=pw_hash, role=role, workspace=workspace)
    else:
        user.password_hash, user.role, user.workspace = pw_hash, role, workspace
        user.revision, user.removed_at, user.created_at = user.revision + 1, None, utcnow()
    session.add(user)
    record(session, "user.add", f"user:{name}", actor=actor, role=role.value,
           workspace=workspace)  # the event is the user's workspace's
    _commit(session)
    return UserInfo.of(user)


def list_users(*, session: Session, workspace: str | None = None) -> list[UserInfo]:
    q = select(User).where(User.removed_at.is_(None)).order_by(User.name)
    if workspace is not None:
        q = q.where(User.workspace == workspace)
    return [UserInfo.of(u) for u in session.exec(q)]


def remove_user(name: str, *, session: Session, actor: str | None = None,
                reason: str = "") -> UserInfo:
    """Remove a user: its tokens stop working at once (in this process; within
    `state_refresh_s` in others)."""
    lock_for_write(session)
    user = _active(session, name)
    user.removed_at, user.revision, user.password_hash = utcnow(), user.revision + 1, ""
    session.add(user)
    record(session, "user.remove", f"user:{name}", actor=actor, reason=reason,
           workspace=user.workspace)
    _commit(session)
    return UserInfo.of(user)


def set_password(name: str, password: str, *, session: Session,
                 actor: str | None = None) -> UserInfo:
    """A new password; tokens issued before it stop working."""
    pw_hash = passwords.hash_password(password)
    lock_for_write(session)
    user = _active(session, name)
    user.password_hash, user.revision = pw_hash, user.revision + 1
    session.add(user)
    record(session, "user.passwd", f"user:{name}", actor=actor, workspace=user.workspace)
    _commit(session)
    return UserInfo.of(user)


def set_role(name: str, role: Role | str, *, session: Session, actor: str | None = None,
             reason: str = "") -> UserInfo:
    """A new role; tokens issued under the old one stop working (sign in again)."""
    role = parse_role(role)
    lock_for_write(session)
    user = _active(session, name)
    if user.role != role:
        before = user.role
        user.role, user.revision = role, user.revision + 1
        session.add(user)
        record(session, "user.role", f"user:{name}", actor=actor, reason=reason,
               before=str(before), after=role.value, workspace=user.workspace)
        _commit(session)
    return UserInfo.of(user)


def authenticate(session: Session, username: str, password: str) -> Principal | None:
    """The user's principal when the name and password match an active user, else None
    (the same answer, in about the same time, whichever part was wrong)."""
    user = session.exec(select(User).where(User.name == (username or ""),
                                           User.removed_at.is_(None))).first()
    if user is None and session.exec(select(User.id).where(User.removed_at.is_(None))
                                     .limit(1)).first() is None:
        return None  # nobody can sign in at all: no name to hide, no time to spend
    if not passwords.verify(user.password_hash if user else None, password or ""):
        return None
    assert user is not None
    if passwords.needs_rehash(user.password_hash):  # stronger parameters since: upgrade
        user.password_hash = passwords.hash_password(password)
        session.add(user)
        session.commit()
    return Principal(actor=user.name, role=Role(user.role), workspace=user.workspace,
                     kind=PrincipalKind.USER)


def revision_of(session: Session, name: str) -> int | None:
    """The active user's revision (what a token issued now carries), None if no such user."""
    user = session.exec(select(User).where(User.name == name,
                                           User.removed_at.is_(None))).first()
    return None if user is None else user.revision


def principal_at(session: Session, name: str, revision: int) -> Principal | None:
    """The active user `name` if still at `revision` (what a token names), else None."""
    user = session.exec(select(User).where(User.name == name, User.removed_at.is_(None),
                                           User.revision == revision)).first()
    if user is None:
        return None
    return Principal(actor=user.name, role=Role(user.role), workspace=user.workspace,
                     kind=PrincipalKind.USER)
