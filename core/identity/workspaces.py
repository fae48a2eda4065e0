"""The workspace registry: which tenants exist. Scoping itself lives in core/store/scope.py."""

from __future__ import annotations

from sqlmodel import Session, select

from core.errors import ConflictError, InputError, NotFoundError
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
    record(session, "workspace.add", f"workspace:{name}", actor=actor, workspace=name)
    session.commit()
    session.refresh(ws)
    return ws


def _known(session: Session) -> str:
    names = {DEFAULT_WORKSPACE, *(w.name for w in list_workspaces(session=session))}
    return ", ".join(sorted(names))


def require_workspace(name: str, *, session: Session) -> str:
    """`name` if that workspace exists, else an error naming the workspaces that do and how
    to create one (users, keys and the CLI's --workspace all go through here, so nothing
    can belong to a workspace the scoping would refuse or that was never created)."""
    try:
        check_workspace_name(name)
    except InputError:
        raise InputError(
            f"{name!r} is not a workspace name (1-63 lowercase letters, digits, '-' or '_'). "
            f"Known workspaces: {_known(session)}. Create one with `workbench workspaces add "
            "NAME`.") from None
    if name == DEFAULT_WORKSPACE:
        return name
    if session.exec(select(Workspace.id).where(Workspace.name == name)).first() is None:
        raise NotFoundError(
            f"Unknown workspace {name!r} (known: {_known(session)}). Create it with `workbench "
            f"workspaces add {name}`, or pick another with --workspace / WORKBENCH_WORKSPACE.")
    return name
