"""Reading the audit log: who changed what, when and why, newest first, with filters.

One query serves `GET /v1/audit`, `workbench audit` and the Audit page, so the three show the
same rows in the same order. The log itself is append-only: nothing here (nor any route)
edits or deletes a row, and the database refuses to (migration 0015_audit_append_only).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import func, or_
from sqlmodel import Session, col, select

from core.errors import InputError
from core.public import FROZEN, IsoDatetime
from core.store.audit import AuditAction
from core.store.tables import AuditEvent

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
MAX_OFFSET = 10_000_000
FAMILIES = frozenset(a.family for a in AuditAction)
_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([mhdw])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


class AuditEntry(BaseModel):
    """One change: when, who (the user or key name, or a component such as "scheduler"),
    what (`action`, on `entity` such as "model:churn:3"), why, and the details recorded."""

    model_config = FROZEN

    id: int
    at: IsoDatetime
    actor: str
    action: str
    entity: str
    reason: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)


class AuditPage(BaseModel):
    """A page of the log, newest first; `total` counts every row matching the filters."""

    model_config = FROZEN

    entries: list[AuditEntry]
    total: int
    limit: int
    offset: int


def check_action(action: str) -> str:
    """An action name ("deployment.promote") or a family ("deployment"), else InputError
    listing what exists."""
    action = action.strip()
    if action in FAMILIES or action in AuditAction._value2member_map_:
        return action
    raise InputError(f"Unknown audit action {action!r}: use one of "
                     f"{', '.join(sorted(FAMILIES))} (a whole family) or a full name such as "
                     f"{', '.join(a.value for a in list(AuditAction)[:3])} "
                     "(`workbench audit --help` lists them).")


def parse_moment(text: str, *, now: datetime | None = None, what: str = "since") -> datetime:
    """"2026-12-02", "2026-12-02T08:00", an ISO time with offset, or "30m", "24h", "7d",
    "2w" ago; naive times are UTC. InputError otherwise."""
    now = now or datetime.now(UTC)
    m = _RELATIVE.match(text)
    if m:
        return now - timedelta(**{_UNITS[m.group(2)]: float(m.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"{what}={text!r} is not a time: write 2026-12-02, "
                         "2026-12-02T08:00 (UTC), or an age such as 30m, 24h, 7d.") from None
    return _utc(moment)


def _utc(moment: datetime) -> datetime:
    """An aware UTC time (the store compares aware values; a naive one is UTC)."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_audit(*, session: Session, entity: str | None = None, action: str | None = None,
               actor: str | None = None, since: datetime | None = None,
               until: datetime | None = None, limit: int = DEFAULT_LIMIT,
               offset: int = 0) -> AuditPage:
    """The log newest first. `entity` matches itself and what lies under it ("model:churn"
    also finds "model:churn:3"); `action` a full name or a family; `actor` exactly;
    `since`/`until` bound the time (inclusive/exclusive)."""
    if not 1 <= limit <= MAX_LIMIT:
        raise InputError(f"limit={limit} is out of range: ask for 1 to {MAX_LIMIT} entries "
                         "and page with offset.")
    if not 0 <= offset <= MAX_OFFSET:
        raise InputError(f"offset={offset} is out of range: use 0 to {MAX_OFFSET}.")
    where = []
    if entity:
        entity = entity.strip()
        where.append(or_(col(AuditEvent.entity) == entity,
                         col(AuditEvent.entity).like(_escaped(entity) + ":%", escape="\\")))
    if action:
        action = check_action(action)
        where.append(col(AuditEvent.action) == action if "." in action
                     else col(AuditEvent.action).like(action + ".%"))
    if actor:
        where.append(col(AuditEvent.actor) == actor.strip())
    if since is not None:
        where.append(col(AuditEvent.at) >= _utc(since))
    if until is not None:
        where.append(col(AuditEvent.at) < _utc(until))
    if since is not None and until is not None and _utc(until) <= _utc(since):
        raise InputError("until must be later than since: nothing lies between them.")
    total = session.exec(select(func.count()).select_from(AuditEvent).where(*where)).one()
    rows = session.exec(select(AuditEvent).where(*where)
                        .order_by(col(AuditEvent.at).desc(), col(AuditEvent.id).desc())
                        .offset(offset).limit(limit)).all()
    return AuditPage(entries=[AuditEntry.model_validate(r) for r in rows], total=total,
                     limit=limit, offset=offset)


def actors(*, session: Session) -> list[str]:
    """Everyone who appears in the log, for a filter's choices."""
    return sorted(session.exec(select(AuditEvent.actor).distinct()).all())


def entity_text(entity: str) -> str:
    """"model:churn:3" → "churn version 3", "job:7" → "job 7": the entity as people say it."""
    kind, _, rest = entity.partition(":")
    if kind == "model" and rest:
        name, _, version = rest.rpartition(":")
        return f"{name} version {version}" if name and version.isdigit() else rest
    return f"{kind} {rest}" if rest else entity


def action_text(action: str) -> str:
    """The action as a phrase ("promoted the candidate"); an action this release does not
    know (written by a newer one) as stored."""
    known = AuditAction._value2member_map_.get(action)
    return known.label if isinstance(known, AuditAction) else action


def detail_text(detail: dict[str, Any]) -> str:
    """Details as "version 3 · percent 10 · mode canary", empty values left out, nested
    values compact."""
    parts = []
    for key, value in detail.items():
        if value in (None, "", {}, []):
            continue
        if isinstance(value, dict):
            value = ", ".join(f"{k} {_short(v)}" for k, v in value.items())
        elif isinstance(value, list):
            value = ", ".join(_short(v) for v in value)
        parts.append(f"{key.replace('_', ' ')} {_short(value)}")
    return " · ".join(parts)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
