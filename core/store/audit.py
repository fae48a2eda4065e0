"""The append-only audit log: who did what, when, and why."""

from __future__ import annotations

import getpass
import os
from typing import Any

from sqlmodel import Session

from core.store.tables import AuditEvent


def default_actor() -> str:
    """The OS user, unless the caller (API token holder, UI user) says otherwise."""
    try:
        return os.environ.get("WORKBENCH_ACTOR") or getpass.getuser()
    except Exception:  # no passwd entry in some containers
        return "unknown"


def record(
    session: Session,
    action: str,
    entity: str,
    *,
    actor: str | None = None,
    reason: str = "",
    **detail: Any,
) -> AuditEvent:
    """Add an audit row inside the caller's transaction, so it commits with the change itself."""
    ev = AuditEvent(action=action, entity=entity, actor=actor or default_actor(), reason=reason,
                    detail=detail)
    session.add(ev)
    return ev
