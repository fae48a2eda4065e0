"""The workspace registry: which tenants exist. Scoping itself lives in core/store/scope.py."""

from __future__ import annotations

from sqlmodel import Session, select

from core.errors import ConflictError, NotFoundError
from core.store.audit import record
from core.store.db import lock_for_write
from core.store.scope import DEFAULT_WORKSPACE, check_workspace_name
from core.store.tables import Workspace


def list_workspaces(*, session: Session) -> list[Workspace]:
    return list(session.exec(select(Workspace).order_by(Workspace.name)).all())


def add_workspace(name: str, *, session: Session, actor: str | None = None) -> Workspace:
    """Create workspace `name` (empty); 409 if it exists."""
    check_workspace_name(name)
    lock_for_write(session)
    if session.exec(select(Workspace).where(Workspace.name == name)).first() is not None:
        raise ConflictError(f"Workspace {name!r} already exists (`workbench workspaces list`).")
    ws = Workspace(name=name)
    session.add(ws)
    record(session, "workspace.add", f"workspace:{name}", actor=actor)
    session.commit()
    session.refresh(ws)
    return ws


def require_workspace(name: str, *, session: Session) -> str:
    """`name` if that workspace exists, else a NotFoundError saying how to create it."""
    check_workspace_name(name)
    if name == DEFAULT_WORKSPACE:
        return name
    if session.exec(select(Workspace.id).where(Workspace.name == name)).first() is None:
        known = ", ".join(w.name for w in list_workspaces(session=session))
        raise NotFoundError(
            f"Unknown workspace {name!r} (known: {known}). Create it with `workbench "
            f"workspaces add {name}`, or pick another with --workspace / WORKBENCH_WORKSPACE.")
    return name
