"""Workspaces (tenants), scoped in ONE place: here.

Every table a user's object lives in inherits `Owned` (a `workspace` column, the workspace's
name). A session carries its workspace in `session.info["workspace"]` (set by `scope`, by
`Database.session(workspace=...)` or by the adapters' session factories); two listeners then
keep it inside that workspace without any use case knowing:

- `do_orm_execute` adds `with_loader_criteria(Owned, workspace == ws)` to every ORM SELECT,
  UPDATE and DELETE, so another workspace's rows are never read, changed or deleted: to the
  caller they do not exist (a 404, never a 403);
- `before_flush` stamps each new `Owned` object with the session's workspace and refuses one
  that names another workspace (`WorkspaceMismatchError`).

`session.get(Table, id)` is scoped too when it reads the database (it runs an ORM SELECT), but
an identity-map hit returns the object without any SELECT: `scope` therefore drops from the
session every object of another workspace when it (re)scopes a session, and `owned_get` checks
the object it returns, so an id from a request or a command's option finds nothing outside the
caller's workspace. Use cases that take an object's id from a caller look it up with
`owned_get` or `require_owned` (a NotFoundError, i.e. a 404, "as if absent").

A session with no workspace is *unscoped*: internal loops (a worker claiming jobs, the
scheduler, the monitor, serving's telemetry) use one to FIND work in every workspace, then act
inside a session scoped to the object's workspace. New objects flushed by an unscoped session
without a workspace go to `default` (what stores made before workspaces hold).

Core statements (`insert(Table.__table__)`) bypass the ORM and these listeners: the few that
exist (telemetry's bulk insert) put the workspace into their rows themselves.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

from sqlalchemy import column, event
from sqlalchemy.orm import ORMExecuteState, with_loader_criteria
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Field, SQLModel

from core.errors import InputError, NotFoundError

DEFAULT_WORKSPACE = "default"  # == core.identity.DEFAULT_WORKSPACE (a test holds them equal)
WORKSPACE_KEY = "workspace"
T = TypeVar("T")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


class WorkspaceMismatchError(InputError):
    """An object of one workspace handed to a session of another: a bug in the caller, never
    something to write."""

    code = "workspace_mismatch"
    http_status = 409


class Owned(SQLModel):
    """Mixin of every table whose rows belong to one workspace."""

    workspace: str | None = Field(default=None, index=True, max_length=63, nullable=False)


def check_workspace_name(name: str) -> str:
    """Workspace names are path- and URL-safe (artifacts are stored under them)."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(
            f"{name!r} is not a valid workspace name: use 1-63 lowercase letters, digits, '-' "
            "or '_', starting with a letter or digit (e.g. 'team-a').")
    return name


def scope(session: OrmSession, workspace: str | None) -> OrmSession:
    """Scope `session` to `workspace` (None: unscoped, for internal loops only). Objects of
    another workspace the session already holds (loaded while unscoped) are dropped from it,
    so no identity-map hit can hand them out afterwards."""
    if workspace is None:
        session.info.pop(WORKSPACE_KEY, None)
        return session
    session.info[WORKSPACE_KEY] = check_workspace_name(workspace)
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Owned) and obj.workspace != workspace:
            session.expunge(obj)
    return session


def owned_get(session: OrmSession, table: type[T], ident: Any, **options: Any) -> T | None:
    """`session.get`, but None for an object of another workspace than the session's (an
    identity-map hit runs no SELECT, so the scoping criteria never see it)."""
    obj = session.get(table, ident, **options)
    ws = session.info.get(WORKSPACE_KEY)
    if obj is not None and ws is not None and isinstance(obj, Owned) and obj.workspace != ws:
        return None
    return obj


def require_owned(session: OrmSession, table: type[T], ident: Any, what: str,
                  hint: str = "") -> T:
    """The object `ident` of the caller's workspace, else NotFoundError naming `what` (the
    field or option the id came from): another workspace's id answers exactly as an absent
    one, so existence does not leak."""
    obj = owned_get(session, table, ident) if ident is not None else None
    if obj is None:
        noun = re.sub(r"(?<!^)(?=[A-Z])", " ", table.__name__).lower()  # ModelVersion -> ...
        raise NotFoundError(f"{what}: no {noun} {ident}." + (f" {hint}" if hint else ""))
    return obj


def workspace_of(session: OrmSession) -> str | None:
    """The workspace `session` is scoped to; None when unscoped."""
    return session.info.get(WORKSPACE_KEY)


def writing_workspace(session: OrmSession) -> str:
    """The workspace new objects of `session` go to."""
    return session.info.get(WORKSPACE_KEY) or DEFAULT_WORKSPACE


def _criteria(ws: str) -> Any:
    return with_loader_criteria(Owned, lambda cls: cls.workspace == ws, include_aliases=True)


def _analysable() -> None:
    """SQLAlchemy runs the criteria's lambda once on `Owned` itself to analyse it, and a
    pydantic base keeps no class attribute per field: give it a stand-in column (mapped
    tables have their own instrumented `workspace`, which is what each query gets)."""
    if "workspace" not in Owned.__dict__:
        type.__setattr__(Owned, "workspace", column("workspace"))


@event.listens_for(OrmSession, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    ws = state.session.info.get(WORKSPACE_KEY)
    if ws is None or state.is_column_load or state.is_relationship_load:
        return
    if state.is_select or state.is_update or state.is_delete:
        _analysable()
        state.statement = state.statement.options(_criteria(ws))


@event.listens_for(OrmSession, "before_flush")
def _stamp_new_objects(session: OrmSession, _ctx: Any, _instances: Any) -> None:
    ws = session.info.get(WORKSPACE_KEY)
    for obj in session.new:
        if not isinstance(obj, Owned):
            continue
        if obj.workspace is None:
            obj.workspace = ws or DEFAULT_WORKSPACE
        elif ws is not None and obj.workspace != ws:
            raise WorkspaceMismatchError(
                f"A {type(obj).__name__} of workspace {obj.workspace!r} cannot be written by a "
                f"session of workspace {ws!r}.")
    if ws is None:
        return
    for obj in session.dirty:
        if isinstance(obj, Owned) and obj.workspace != ws:
            raise WorkspaceMismatchError(
                f"A {type(obj).__name__} cannot be moved from or to workspace "
                f"{obj.workspace!r} by a session of workspace {ws!r}.")


class ModelKey(str):
    """A model's name qualified by its workspace: what serving keys its caches, routing,
    telemetry and guard rails on, so two workspaces' "churn" never meet. It prints (and binds
    into SQL) as the bare name; it equals and hashes as (workspace, name), so a lookup with
    another workspace's key misses instead of crossing. A bare name means `default` (as in
    stores made before workspaces): `default`'s key equals and hashes as the bare name.
    Interned by `model_key` (one dict lookup keyed by a tuple per request, no DB query)."""

    workspace: str
    _hash: int

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ModelKey):
            return other.workspace == self.workspace and str.__eq__(self, other)
        return self.workspace == DEFAULT_WORKSPACE and str.__eq__(self, other) is True

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple:
        return model_key, (self.workspace, str(self))

    @property
    def label(self) -> str:
        """`name` in `default`, `workspace/name` elsewhere (metric labels, logs)."""
        bare = str.__str__(self)
        return bare if self.workspace == DEFAULT_WORKSPACE else f"{self.workspace}/{bare}"


_KEYS: dict[tuple[str, str], ModelKey] = {}


def model_key(workspace: str, name: str) -> ModelKey:
    """The interned key of model `name` in `workspace`."""
    pair = (workspace, name)
    key = _KEYS.get(pair)
    if key is None:
        key = ModelKey(name)
        key.workspace = workspace
        key._hash = hash(name) if workspace == DEFAULT_WORKSPACE else hash(pair)
        if len(_KEYS) < 100_000:  # names come from callers: bound what is interned
            _KEYS[pair] = key
    return key


def workspace_of_key(name: str) -> str:
    """The workspace a served name belongs to (`default` for a bare name)."""
    return name.workspace if isinstance(name, ModelKey) else DEFAULT_WORKSPACE
