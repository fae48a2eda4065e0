"""API keys for machines (`workbench keys create|list|revoke`).

A key is `wbk_` + a 12-character lookup prefix + `_` + 256 random bits. Only the prefix and
the SHA-256 of the whole key are stored: the key itself is shown once, by `create_key`, and
cannot be recovered (a slow hash is for guessable passwords; a random key this long needs
none). Revoked keys keep their row for the audit trail."""

from __future__ import annotations

import secrets
from datetime import datetime

from pydantic import BaseModel
from sqlmodel import Session, select

from core.errors import ConflictError, NotFoundError
from core.identity import directory
from core.identity.directory import KEY_MARK, PREFIX_LEN, key_digest, key_prefix
from core.identity.naming import check_name, parse_role
from core.identity.principal import DEFAULT_WORKSPACE, Principal, PrincipalKind, Role
from core.identity.workspaces import require_workspace
from core.store.audit import record
from core.store.db import lock_for_write
from core.store.identity import ApiKey
from core.store.tables import utcnow


class KeyInfo(BaseModel):
    """What may be shown about a key (its prefix, never the key or its hash)."""

    name: str
    prefix: str
    role: Role
    workspace: str
    created_at: datetime
    revoked_at: datetime | None = None

    @classmethod
    def of(cls, k: ApiKey) -> KeyInfo:
        return cls(name=k.name, prefix=k.prefix, role=Role(k.role), workspace=k.workspace,
                   created_at=k.created_at, revoked_at=k.revoked_at)


class CreatedKey(BaseModel):
    info: KeyInfo
    key: str  # the only time it is ever available


def create_key(name: str, *, role: Role | str, session: Session,
               workspace: str = DEFAULT_WORKSPACE, actor: str | None = None) -> CreatedKey:
    name = check_name(name, "key")
    workspace = require_workspace(workspace, session=session)
    role = parse_role(role)
    lock_for_write(session)
    if session.exec(select(ApiKey).where(ApiKey.name == name,
                                         ApiKey.revoked_at.is_(None))).first() is not None:
        raise ConflictError(f"An active key named {name!r} exists already; revoke it first "
                            "(`workbench keys revoke NAME`) or pick another name.")
    prefix = secrets.token_hex(PREFIX_LEN // 2)
    key = f"{KEY_MARK}{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(name=name, prefix=prefix, hash=key_digest(key), role=role,
                 workspace=workspace)
    session.add(row)
    record(session, "key.create", f"key:{name}", actor=actor, role=role.value,
           workspace=workspace, prefix=prefix)
    session.commit()
    directory.changed()
    return CreatedKey(info=KeyInfo.of(row), key=key)


def list_keys(*, session: Session, include_revoked: bool = False,
              workspace: str | None = None) -> list[KeyInfo]:
    q = select(ApiKey).order_by(ApiKey.name, ApiKey.id)
    if not include_revoked:
        q = q.where(ApiKey.revoked_at.is_(None))
    if workspace is not None:
        q = q.where(ApiKey.workspace == workspace)
    return [KeyInfo.of(k) for k in session.exec(q)]


def revoke_key(name: str, *, session: Session, actor: str | None = None,
               reason: str = "") -> KeyInfo:
    """Revoke the active key `name` (or the key whose prefix is `name`): refused at once in
    this process, within `state_refresh_s` in others."""
    lock_for_write(session)
    row = session.exec(select(ApiKey).where(
        (ApiKey.name == name) | (ApiKey.prefix == name), ApiKey.revoked_at.is_(None))).first()
    if row is None:
        raise NotFoundError(f"There is no active key {name!r}; `workbench keys list` shows "
                            "them.")
    row.revoked_at = utcnow()
    session.add(row)
    record(session, "key.revoke", f"key:{row.name}", actor=actor, reason=reason,
           prefix=row.prefix, workspace=row.workspace)
    session.commit()
    directory.changed()
    return KeyInfo.of(row)


def resolve(session: Session, key: str) -> Principal | None:
    """The principal of an active key, straight from the store (the API uses the cached
    snapshot instead)."""
    prefix = key_prefix(key)
    row = session.exec(select(ApiKey).where(ApiKey.prefix == prefix,
                                            ApiKey.revoked_at.is_(None))).first() \
        if prefix else None
    if row is None or not secrets.compare_digest(row.hash, key_digest(key)):
        return None
    return Principal(actor=row.name, role=Role(row.role), workspace=row.workspace,
                     kind=PrincipalKind.KEY)
