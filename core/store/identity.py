"""The identity tables: users (who signs in with a password) and API keys (what machines send).
Owned by `core.identity`; kept here with the other tables so one metadata and one migration
chain describe the whole store.

Neither table ever holds a secret: a user's password is an argon2 hash, a key is the SHA-256 of
a high-entropy random string (found by its public `prefix`). Rows are never deleted: a removed
user keeps its row (`removed_at`, `revision` bumped) so a name added again later starts at a
higher revision and the old user's tokens can never match it; a revoked key keeps its row for
the audit trail."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from core.store.tables import utcnow


class User(SQLModel, table=True):
    """A person who signs in (`workbench users add`). `revision` goes up on every change that
    must end the tokens already issued (remove, role change, new password)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=100)
    password_hash: str = Field(max_length=200)
    role: str = Field(max_length=20)  # core.identity.Role
    workspace: str = Field(default="default", max_length=100)
    revision: int = 1
    created_at: datetime = Field(default_factory=utcnow)
    removed_at: datetime | None = None


class ApiKey(SQLModel, table=True):
    """A machine's key (`workbench keys create`): shown once, stored as a hash."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=100)
    prefix: str = Field(index=True, unique=True, max_length=32)
    hash: str = Field(max_length=64)  # hex SHA-256 of the whole key
    role: str = Field(max_length=20)
    workspace: str = Field(default="default", max_length=100)
    created_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None
