"""An alert when the guard rails cannot judge a model's canary (e.g. rails stored by an older
release that are not valid any more): the guard loop carries on with the other models, and
this alert tells a person that this canary is running unguarded and what to fix.

One unresolved `GUARD` alert per (model, version), opened at once (critical: the canary has no
automatic rollback while it lasts), resolved when the rails judge that model again. Both are
use cases on the caller's session: each takes the write lock first and commits once."""

from __future__ import annotations

from sqlmodel import Session, select

from core.store import Alert, utcnow
from core.store.audit import record
from core.store.db import lock_for_write

KIND = "GUARD"
UNRESOLVED = ("pending", "open", "acknowledged")


def report(model: str, version: int | None, message: str, *, session: Session) -> Alert:
    """Open the model's GUARD alert, or refresh its message if it is already unresolved."""
    now = utcnow()
    lock_for_write(session)
    alert = session.exec(select(Alert).where(
        Alert.model_name == model, Alert.version == version, Alert.kind == KIND,
        Alert.state.in_(UNRESOLVED)).with_for_update()).first()
    if alert is None:
        alert = Alert(model_name=model, version=version, kind=KIND, severity="critical",
                      state="open", opened_at=now, first_seen_at=now)
        record(session, "alert.open", f"model:{model}", actor="guard-rails",
               reason=message[:2000], kind=KIND, version=version)
    alert.consecutive += 1
    alert.last_seen_at = now
    alert.message = message[:2000]
    session.add(alert)
    session.commit()
    return alert


def clear(model: str, *, session: Session) -> int:
    """Resolve the model's GUARD alerts (its rails judged again); returns how many."""
    now = utcnow()
    lock_for_write(session)
    rows = session.exec(select(Alert).where(Alert.model_name == model, Alert.kind == KIND,
                                            Alert.state.in_(UNRESOLVED))).all()
    for alert in rows:
        alert.state, alert.resolved_at = "resolved", now
        session.add(alert)
    session.commit()
    return len(rows)
