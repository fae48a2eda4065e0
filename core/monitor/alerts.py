"""Alerts that act: conditions checked per window, opened after N consecutive bad windows,
de-duplicated, acknowledged or resolved, optionally posted to a webhook and able to roll back a
canary or start a (promotion-gated) retrain.

Lifecycle of one (model, version, kind, feature) key: pending (bad, < N windows) → open
(N windows: webhook and actions fire once) → acknowledged (stays quiet while the condition
holds) → resolved when the condition clears. A recurrence after that is a new alert.

Every live job worker and the monitor process `workbench serve` starts check every
CHECK_EVERY_S, one at a time (`monitor_pass`); a bad window counts once however many of them
look at it (observations closer than SAME_WINDOW_S to the last counted one are the same
window), so N consecutive windows means N × 30 s with any number of checkers.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import select

from core.errors import ConflictError, NotFoundError, WorkbenchError
from core.monitor.webhook import check_webhook_url, post_webhook  # SSRF-checked client
from core.store import (
    Alert,
    ModelVersion,
    MonitorConfig,
    RegisteredModel,
    exclusive,
    session_scope,
    utcnow,
)
from core.store.audit import record

log = logging.getLogger("workbench.alerts")
KINDS = ("DRIFT", "PERFORMANCE", "ERROR", "LATENCY")
UNRESOLVED = ("pending", "open", "acknowledged")
CHECK_EVERY_S = 30.0
SAME_WINDOW_S = 0.8 * CHECK_EVERY_S
SEVERITY = {"ERROR": "critical", "LATENCY": "warning", "PERFORMANCE": "critical",
            "DRIFT": "warning"}


@dataclass(frozen=True)
class Observation:
    """One window's verdict for one alert key."""

    model: str
    version: int | None
    kind: str
    bad: bool
    message: str = ""
    value: float | None = None
    threshold: float | None = None
    feature: str = ""


def get_config(model: str) -> MonitorConfig:
    with session_scope() as s:
        cfg = s.exec(select(MonitorConfig).where(MonitorConfig.model_name == model)).first()
    return cfg or MonitorConfig(model_name=model)


def set_config(model: str, actor: str | None = None, **fields: Any) -> MonitorConfig:
    unknown = set(fields) - set(MonitorConfig.model_fields) - {"id", "model_name"}
    if unknown:
        raise WorkbenchError(f"Unknown monitor settings: {', '.join(sorted(unknown))}.")
    if fields.get("webhook_url"):
        check_webhook_url(fields["webhook_url"])  # http(s), and no internal address (SSRF)
    with session_scope(write=True) as s:
        if s.exec(select(RegisteredModel).where(RegisteredModel.name == model)).first() is None:
            raise NotFoundError(f"No model named {model!r}.")
        cfg = s.exec(select(MonitorConfig).where(MonitorConfig.model_name == model)).first()
        cfg = cfg or MonitorConfig(model_name=model)
        for k, v in fields.items():
            setattr(cfg, k, v)
        s.add(cfg)
        record(s, "monitor.config", f"model:{model}", actor=actor, **fields)
        return cfg


def observe(obs: Observation, now: datetime | None = None) -> Alert | None:
    """Apply one window's verdict; returns the alert if it just opened."""
    now = now or utcnow()
    cfg = get_config(obs.model)
    opened = None
    with session_scope(write=True) as s:
        alert = s.exec(select(Alert).where(
            Alert.model_name == obs.model, Alert.version == obs.version, Alert.kind == obs.kind,
            Alert.feature == obs.feature, Alert.state.in_(UNRESOLVED))
            .with_for_update()).first()
        if not obs.bad:
            if alert is not None:
                alert.state = "resolved"
                alert.resolved_at = now
                s.add(alert)
            return None
        if alert is None:
            alert = Alert(model_name=obs.model, version=obs.version, kind=obs.kind,
                          feature=obs.feature, severity=SEVERITY[obs.kind], first_seen_at=now)
        elif alert.consecutive and _utc(now) - _utc(alert.last_seen_at) < timedelta(
                seconds=SAME_WINDOW_S):
            return None  # another checker already counted this window
        alert.consecutive += 1
        alert.last_seen_at = now
        alert.message, alert.value, alert.threshold = obs.message, obs.value, obs.threshold
        if alert.state == "pending" and alert.consecutive >= cfg.consecutive:
            alert.state, alert.opened_at = "open", now
            opened = alert
        s.add(alert)
        s.flush()
        if opened is not None:
            record(s, "alert.open", f"model:{obs.model}", actor="monitor", reason=obs.message,
                   kind=obs.kind, version=obs.version, alert_id=alert.id)
    if opened is not None:
        _act(opened, cfg)
    return opened


def _utc(moment: datetime) -> datetime:
    """Stored datetimes come back naive from some backends; all of ours are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _act(alert: Alert, cfg: MonitorConfig) -> None:
    actions = []
    if (rolled_back := _rollback(alert, cfg)) is not None:
        actions.append(rolled_back)
    if cfg.retrain_on_alert and alert.kind in ("DRIFT", "PERFORMANCE"):
        from core.usecases.retraining import retrain_for_alert  # moves up with _act

        try:
            with session_scope() as s:
                actions.append(retrain_for_alert(alert.model_name, alert.version, session=s))
        except WorkbenchError as exc:
            actions.append(f"retrain not possible: {exc.message}"[:300])
    if actions:
        with session_scope() as s:
            row = s.get(Alert, alert.id)
            row.action = "; ".join(actions)
            s.add(row)
    if cfg.webhook_url:
        payload = {"id": alert.id, "model": alert.model_name, "version": alert.version,
                   "kind": alert.kind, "severity": alert.severity, "message": alert.message,
                   "actions": actions}
        threading.Thread(target=post_webhook, args=(cfg.webhook_url, payload),
                         daemon=True).start()


def _rollback(alert: Alert, cfg: MonitorConfig) -> str | None:
    """An ERROR alert on a canary candidate rolls it back, as the guard rails would (users are
    getting its failures); with `rollback_on_alert` an alert of any kind on the candidate
    does. Atomic against a newer candidate or another process acting first."""
    from core.deploy import get_state, rollback

    state = get_state(alert.model_name)
    if state.candidate is None or state.candidate != alert.version:
        return None
    # as the guard rails would: over the deployment's own error-rate rail, not only the
    # monitor's threshold (a canary deployed with --max-error-rate 0.2 keeps its 20 %)
    failing = (alert.kind == "ERROR" and state.mode == "canary"
               and (alert.value or 0.0) > float(state.guard_rails["max_error_rate"]))
    if not (cfg.rollback_on_alert or failing):
        return None
    try:
        after = rollback(alert.model_name, actor="alert", automatic=True,
                         reason=f"alert {alert.id}: {alert.message}",
                         expect_candidate=alert.version,
                         metrics={"kind": alert.kind, "value": alert.value,
                                  "threshold": alert.threshold})
    except ConflictError:  # rolled back meanwhile (guard rails, a person)
        return None
    if after.candidate is not None:  # another candidate was deployed meanwhile: left alone
        return None
    return f"rolled back candidate {alert.version}"


def acknowledge(alert_id: int, actor: str | None = None) -> Alert:
    with session_scope(write=True) as s:
        alert = s.get(Alert, alert_id)
        if alert is None:
            raise NotFoundError(f"No alert {alert_id}.")
        if alert.state not in ("open", "pending"):
            raise ConflictError(f"Alert {alert_id} is {alert.state}; only open alerts can be "
                                "acknowledged.")
        alert.state, alert.acknowledged_at = "acknowledged", utcnow()
        alert.acknowledged_by = actor or "unknown"
        s.add(alert)
        record(s, "alert.ack", f"model:{alert.model_name}", actor=actor, alert_id=alert_id)
        return alert


def list_alerts(model: str | None = None, states: tuple[str, ...] = ("open", "acknowledged")
                ) -> list[Alert]:
    with session_scope() as s:
        q = select(Alert).where(Alert.state.in_(states)).order_by(Alert.id.desc())
        if model:
            q = q.where(Alert.model_name == model)
        return list(s.exec(q).all())


def alert_doc(a: Alert) -> dict[str, Any]:
    return {"id": a.id, "model": a.model_name, "version": a.version, "kind": a.kind,
            "feature": a.feature or None, "severity": a.severity, "state": a.state,
            "message": a.message, "value": a.value, "threshold": a.threshold,
            "consecutive": a.consecutive, "action": a.action or None,
            "first_seen_at": a.first_seen_at.isoformat(),
            "opened_at": a.opened_at.isoformat() if a.opened_at else None,
            "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else None,
            "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None}


def check(model: str, window: str = "5m", now: datetime | None = None) -> list[Alert]:
    """Evaluate one window for every deployed version of `model`; returns alerts that opened."""
    from core.deploy import get_state
    from core.monitor.live import accuracy, traffic

    now = now or utcnow()
    cfg = get_config(model)
    state = get_state(model)
    live = traffic(model, window, now=now)["versions"]
    opened = []
    for version in [v for v in (state.stable, state.candidate) if v is not None]:
        stats = live.get(str(version))
        # judged on the requests it scored (ok + failed): rejected ones are the caller's
        enough = stats is not None and stats["ok"] + stats["failed"] >= cfg.min_requests
        err = stats["error_rate"] if enough else 0.0
        p99 = (stats["latency_p99_ms"] or 0.0) if enough else 0.0
        for obs in (
            Observation(model, version, "ERROR", enough and err > cfg.max_error_rate,
                        f"{model}:{version} error rate {err:.1%} > {cfg.max_error_rate:.1%}",
                        err, cfg.max_error_rate),
            Observation(model, version, "LATENCY", enough and p99 > cfg.max_p99_ms,
                        f"{model}:{version} p99 latency {p99:.0f} ms > {cfg.max_p99_ms:.0f} ms",
                        p99, cfg.max_p99_ms),
            _performance(model, version, accuracy, window, now, cfg),
            _prediction_drift(model, version, stats, cfg),
        ):
            if obs is not None and (a := observe(obs, now)) is not None:
                opened.append(a)
        for obs in _feature_drift(model, version, window, now):
            if (a := observe(obs, now)) is not None:
                opened.append(a)
    return opened


def _feature_drift(model: str, version: int, window: str, now: datetime
                   ) -> list[Observation]:
    """One DRIFT key per feature, from the rows the version scored in the window."""
    from core.monitor.live import live_drift

    try:
        report = live_drift(model, window, version, now=now)
    except WorkbenchError:
        return []
    return [Observation(model, version, "DRIFT", bool(r["drifted"]),
                        f"{model}:{version} feature {r['feature']!r} drifted ({r['test']}, "
                        f"effect {r['effect_size']:.3g})" if r["effect_size"] is not None
                        else "", r["effect_size"], r["threshold"], feature=r["feature"])
            for r in report["results"]]


def _prediction_drift(model: str, version: int, stats: dict[str, Any] | None,
                      cfg: MonitorConfig) -> Observation | None:
    """The live prediction mix against the version's out-of-fold prediction mix (Jensen-Shannon
    distance; classification only)."""
    from scipy.spatial.distance import jensenshannon

    with session_scope() as s:
        mv = s.exec(select(ModelVersion).join(RegisteredModel).where(
            RegisteredModel.name == model, ModelVersion.version == version)).first()
    ref = (mv.evaluation.get("reference") or {}).get("prediction") if mv else None
    if ref is None or ref.get("type") != "categorical":
        return None
    live = {k: v for k, v in (stats or {}).get("predictions", {}).items()
            if k not in ("n", "sum")}
    n = sum(live.values())
    if n < cfg.min_requests:
        return Observation(model, version, "DRIFT", False, feature="__prediction__")
    labels = sorted(set(ref["frequencies"]) | set(live))
    p = [ref["frequencies"].get(k, 0.0) for k in labels]
    q = [live.get(k, 0) / n for k in labels]
    js = float(jensenshannon(p, q, base=2))
    return Observation(model, version, "DRIFT", js > cfg.max_prediction_drift,
                       f"{model}:{version} prediction mix drifted (Jensen-Shannon {js:.2f} > "
                       f"{cfg.max_prediction_drift})", js, cfg.max_prediction_drift,
                       feature="__prediction__")


def _performance(model: str, version: int, accuracy_fn: Any, window: str, now: datetime,
                 cfg: MonitorConfig) -> Observation | None:
    """Accuracy from feedback against the version's validation accuracy (or RMSE)."""
    with session_scope() as s:
        mv = s.exec(select(ModelVersion).join(RegisteredModel).where(
            RegisteredModel.name == model, ModelVersion.version == version)).first()
    if mv is None:
        return None
    live = accuracy_fn(model, mv.task, window, now=now).get(str(version))
    ref = mv.metrics.get("rmse" if mv.task == "regression" else "accuracy")
    if not live or live["n"] < cfg.min_requests or ref is None:
        return Observation(model, version, "PERFORMANCE", False)  # nothing to judge against
    if mv.task == "regression":
        cur = live["rmse"]
        bad = cur > ref * (1 + cfg.max_accuracy_drop)
        return Observation(model, version, "PERFORMANCE", bad,
                           f"{model}:{version} live RMSE {cur:.4g} vs validation {ref:.4g}",
                           cur, ref)
    cur = live["accuracy"]
    bad = cur < ref * (1 - cfg.max_accuracy_drop)
    return Observation(model, version, "PERFORMANCE", bad,
                       f"{model}:{version} live accuracy {cur:.1%} vs validation {ref:.1%}",
                       cur, ref)


def monitor_pass() -> list[Alert]:
    """What every job worker and monitor process runs every CHECK_EVERY_S: the alert checks
    and telemetry compaction, by one process at a time (the others skip this round)."""
    from core.monitor.live import compact

    with exclusive("workbench-monitor") as mine:
        if not mine:
            return []
        opened = check_all()
        compact()
        return opened


def run_monitor(stop: threading.Event) -> None:
    """The monitor-only loop (`workbench worker --monitor-only`, which `workbench serve`
    starts beside the server): a monitor pass every CHECK_EVERY_S until `stop` is set. It is
    a process of its own because the pass (drift tests, queries) would otherwise hold the
    server's GIL and stall requests. It registers no job worker, so jobs still start one."""
    while not stop.is_set():
        try:
            monitor_pass()
        except Exception:  # a database hiccup must not end monitoring
            log.exception("monitor pass failed")
        stop.wait(CHECK_EVERY_S)


def check_all(now: datetime | None = None) -> list[Alert]:
    """One window check for every model that has a deployment (run by the workers)."""
    from core.store import Deployment

    with session_scope() as s:
        names = list(s.exec(select(RegisteredModel.name).join(
            Deployment, Deployment.model_id == RegisteredModel.id)).all())
    opened = []
    for name in names:
        try:
            opened.extend(check(name, now=now))
        except WorkbenchError as exc:
            log.warning("monitor check of %s failed: %s", name, exc.message)
    return opened
