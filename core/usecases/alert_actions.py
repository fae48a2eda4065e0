"""What alerts do, and what people do with them: the actions an alert takes when it opens
(roll back the canary it is about, queue a promotion-gated retrain, call the model's
webhook), acknowledging one, raising DRIFT alerts from a drift report, and the monitor pass
that checks every deployed model every CHECK_EVERY_S.

These compose `core.monitor` (conditions and the alert lifecycle), `core.deploy` (rollback)
and `core.jobs` (retrain), which is why they sit in the use-case layer: the monitor itself
imports neither jobs nor anything above it.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from sqlmodel import Session

from core.deploy.deployments import get_state, rollback
from core.deploy.enums import AlertKind, AlertState, DeploymentMode, move_alert
from core.deploy.webhook import notify
from core.errors import ConflictError, NotFoundError, WorkbenchError
from core.monitor.alerts import (
    CHECK_EVERY_S,
    check,
    deployed_models,
    drift_observations,
    get_config,
    observe_all,
)
from core.monitor.live import compact
from core.monitor.public import AlertPublic, DriftReport
from core.store import Alert, Database, MonitorConfig, lock_for_write, utcnow
from core.store.audit import record
from core.store.scope import owned_get, workspace_of_key
from core.usecases.retraining import retrain_for_alert

log = logging.getLogger("workbench.alerts")
MONITOR_LOCK = "workbench-monitor"


def _rollback(alert: Alert, cfg: MonitorConfig, session: Session) -> str | None:
    """An ERROR alert on a canary candidate rolls it back, as the guard rails would (users are
    getting its failures); with `rollback_on_alert` an alert of any windowed kind on the
    candidate does (a GUARD alert never: it says the rails cannot judge, not that the
    candidate is bad). Atomic against a newer candidate or another process acting first."""
    kind = AlertKind(alert.kind)
    if not kind.windowed:
        return None
    state = get_state(alert.model_name, session=session)
    if state.candidate is None or state.candidate != alert.version:
        return None
    # as the guard rails would: over the deployment's own error-rate rail, not only the
    # monitor's threshold (a canary deployed with --max-error-rate 0.2 keeps its 20 %)
    failing = (kind is AlertKind.ERROR and DeploymentMode(state.mode).answers
               and (alert.value or 0.0) > float(state.guard_rails["max_error_rate"]))
    if not (cfg.rollback_on_alert or failing):
        return None
    try:
        after = rollback(alert.model_name, session=session, actor="alert", automatic=True,
                         reason=f"alert {alert.id}: {alert.message}",
                         expect_candidate=alert.version,
                         metrics={"kind": alert.kind, "value": alert.value,
                                  "threshold": alert.threshold})
    except ConflictError:  # rolled back meanwhile (guard rails, a person)
        session.rollback()  # ends the refused transaction: its write lock is not kept
        return None
    if after.candidate is not None:  # another candidate was deployed meanwhile: left alone
        return None
    return f"rolled back candidate {alert.version}"


def act(alert: Alert, *, session: Session) -> list[str]:
    """What an alert does once, when it opens: its actions (each its own committed step,
    so a rollback stands even if the retrain then fails), the actions written on the alert,
    and the model's webhook told about it. The session must hold no pending work."""
    cfg = get_config(alert.model_name, session=session)
    actions = []
    if (rolled_back := _rollback(alert, cfg, session)) is not None:
        actions.append(rolled_back)
    if cfg.retrain_on_alert and AlertKind(alert.kind).retrains:
        try:
            actions.append(retrain_for_alert(alert.model_name, alert.version,
                                             session=session))
        except WorkbenchError as exc:
            session.rollback()  # nothing half-queued is committed with the action below
            actions.append(f"retrain not possible: {exc.message}"[:300])
    if actions:
        lock_for_write(session)
        row = session.get(Alert, alert.id)
        row.action = "; ".join(actions)
        session.add(row)
        session.commit()
    notify(cfg.webhook_url, alert, actions)
    return actions


def acknowledge(alert_id: int, actor: str | None = None, *, session: Session
                ) -> AlertPublic:
    """A person saw the alert: it stays quiet while its condition holds, and resolves (then
    may recur as a new alert) when it clears."""
    lock_for_write(session)
    alert = owned_get(session, Alert, alert_id)
    if alert is None:
        raise NotFoundError(f"No alert {alert_id}.")
    if not AlertState(alert.state).can_become(AlertState.ACKNOWLEDGED):
        raise ConflictError(f"Alert {alert_id} is {alert.state}; only open alerts can be "
                            "acknowledged.")
    move_alert(alert, AlertState.ACKNOWLEDGED, utcnow(), by=actor)
    session.add(alert)
    record(session, "alert.ack", f"model:{alert.model_name}", actor=actor, alert_id=alert_id)
    public = AlertPublic.of(alert)
    session.commit()
    return public


def act_on(opened: list[Alert], *, session: Session) -> list[Alert]:
    """Each alert that just opened does what it does; returns them."""
    for alert in opened:
        act(alert, session=session)
    return opened


def raise_drift_alerts(report: DriftReport, *, session: Session) -> list[Alert]:
    """Feed a drift report into the alert lifecycle (one DRIFT key per feature); the alerts
    that open act as any other."""
    return act_on(observe_all(drift_observations(report), session=session), session=session)


def check_and_act(model: str, window: str = "5m", now: datetime | None = None, *,
                  session: Session) -> list[Alert]:
    """One window check of a model, and the actions of the alerts it opened."""
    return act_on(check(model, window, now, session=session), session=session)


def monitor_pass(db: Database, now: datetime | None = None) -> list[AlertPublic]:
    """What every job worker and monitor process runs every CHECK_EVERY_S: the alert checks
    (one unit of work per model: one model's failure is logged and the others are checked)
    and telemetry compaction, by one process at a time (the others skip this round)."""
    with db.exclusive(MONITOR_LOCK) as mine:
        if not mine:
            return []
        with db.session() as s:
            names = deployed_models(session=s)
        opened = []
        for name in names:
            try:
                with db.session(workspace=workspace_of_key(name)) as s:
                    opened += [AlertPublic.of(a) for a in check_and_act(name, now=now,
                                                                         session=s)]
            except WorkbenchError as exc:
                log.warning("monitor check of %s failed: %s", name, exc.message)
        with db.session() as s:
            compact(session=s)
        return opened


def run_monitor(stop: threading.Event, db: Database) -> None:
    """The monitor-only loop (`workbench worker --monitor-only`, which `workbench serve`
    starts beside the server): a monitor pass every CHECK_EVERY_S until `stop` is set. It is
    a process of its own because the pass (drift tests, queries) would otherwise hold the
    server's GIL and stall requests. It registers no job worker, so jobs still start one."""
    while not stop.is_set():
        try:
            monitor_pass(db)
        except Exception:  # a database hiccup must not end monitoring
            log.exception("monitor pass failed")
        stop.wait(CHECK_EVERY_S)


__all__ = ["CHECK_EVERY_S", "acknowledge", "act", "check_and_act", "monitor_pass",
           "raise_drift_alerts", "run_monitor"]
