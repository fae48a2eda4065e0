"""An alert when the guard rails cannot judge a model's canary (e.g. rails stored by an older
release that are not valid any more): the guard loop carries on with the other models, and
this alert tells a person that this canary is running unguarded and what to fix.

One unresolved `GUARD` alert per (model, version), opened at once (critical: the canary has no
automatic rollback while it lasts), resolved when the rails judge that model again. Opening it
sends the model's webhook through the same path as the monitor's alerts
(`core.deploy.webhook.notify`)."""

from __future__ import annotations

from sqlmodel import Session, select

from core.deploy.enums import UNRESOLVED, AlertKind, AlertState, move_alert
from core.deploy.webhook import notify
from core.store import Alert, MonitorConfig, lock_for_write, utcnow
from core.store.audit import record

KIND = AlertKind.GUARD


def report(model: str, version: int | None, message: str, *, session: Session) -> Alert:
    """Open the model's GUARD alert, or refresh its message if it is already unresolved."""
    lock_for_write(session)
    now = utcnow()
    alert = session.exec(select(Alert).where(
        Alert.model_name == model, Alert.version == version, Alert.kind == KIND,
        Alert.state.in_(UNRESOLVED)).with_for_update()).first()
    opened = alert is None
    if alert is None:
        alert = Alert(model_name=model, version=version, kind=KIND, severity=KIND.severity,
                      state=AlertState.OPEN, opened_at=now, first_seen_at=now)
        record(session, "alert.open", f"model:{model}", actor="guard-rails",
               reason=message[:2000], kind=KIND, version=version)
    alert.consecutive += 1
    alert.last_seen_at = now
    alert.message = message[:2000]
    session.add(alert)
    session.flush()
    url = session.exec(select(MonitorConfig.webhook_url)
                       .where(MonitorConfig.model_name == model)).first()
    session.commit()
    if opened:
        notify(url, alert, [])
    return alert


def clear(model: str, *, session: Session) -> int:
    """Resolve the model's GUARD alerts (its rails judged again); returns how many."""
    query = select(Alert).where(Alert.model_name == model, Alert.kind == KIND,
                                Alert.state.in_(UNRESOLVED))
    if session.exec(query).first() is None:
        return 0  # the usual case: no write lock taken
    lock_for_write(session)
    now = utcnow()
    rows = session.exec(query).all()
    for alert in rows:
        move_alert(alert, AlertState.RESOLVED, now)
        session.add(alert)
    session.commit()
    return len(rows)
