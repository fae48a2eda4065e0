"""`GET /v1/audit`: the audit log, newest first, filtered (ARCHITECTURE.md "Identity,
workspaces and audit"). Read-only on purpose: the log is append-only, so this router has no
route that edits or deletes an entry (tests/app/test_api_audit.py checks /openapi.json), and a
viewer may read it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.deps import SessionDep
from app.api.errors import ERRORS
from core.store.audit_log import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    AuditPage,
    list_audit,
    parse_moment,
)

router = APIRouter(tags=["audit"])
TIME_HELP = ("2026-12-02, 2026-12-02T08:00 (UTC unless an offset is given), or an age such as "
             "30m, 24h, 7d, 2w")


@router.get("/v1/audit", response_model=AuditPage, responses=ERRORS)
def read_audit(
    session: SessionDep,
    entity: Annotated[str | None, Query(max_length=300, description=(
        "An entity and everything under it: model:churn also finds model:churn:3"))] = None,
    action: Annotated[str | None, Query(max_length=100, description=(
        "A full action (deployment.promote) or a family (deployment)"))] = None,
    actor: Annotated[str | None, Query(max_length=200, description=(
        "The user or key name (or a component: scheduler, gate, monitor)"))] = None,
    since: Annotated[str | None, Query(max_length=40, description=f"From: {TIME_HELP}")] = None,
    until: Annotated[str | None, Query(max_length=40,
                                       description=f"Before: {TIME_HELP}")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> AuditPage:
    """Every change with its actor, time, reason and details, newest first; `total` counts
    all matches (page with `offset`). An unknown action or an unreadable time is a 400
    saying what to write."""
    return list_audit(
        session=session, entity=entity, action=action, actor=actor,
        since=parse_moment(since) if since else None,
        until=parse_moment(until, what="until") if until else None,
        limit=limit, offset=offset)
