"""Alert conditions checked per window, opened after N consecutive bad windows,
de-duplicated, acknowledged or resolved.

Lifecycle of one (model, version, kind, feature) key (`core.deploy.enums.AlertState` holds
the transition table): pending (bad, < N windows) → open (N windows) → acknowledged (stays
quiet while the condition holds) → resolved when the condition clears. A recurrence after
that is a new alert. What an alert that opens *does* (roll back a canary, queue a retrain,
call the webhook) is a use case above this package: `core.usecases.alert_actions`, which also
runs the monitor pass.

Every live job worker and the monitor process `workbench serve` starts check every
CHECK_EVERY_S, one at a time; a bad window counts once however many of them look at it
(observations closer than SAME_WINDOW_S to the last counted one are the same window), so N
consecutive windows means N × 30 s with any number of checkers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from scipy.spatial.distance import jensenshannon
from sqlmodel import Session, select

from core.automl.metrics import METRICS
from core.deploy.deployments import get_state
from core.deploy.enums import (
    LISTED,
    UNRESOLVED,
    AlertKind,
    AlertState,
    move_alert,
)
from core.deploy.rails import DEFAULT_GUARD_RAILS
from core.deploy.webhook import check_webhook_url
from core.enums import Task
from core.errors import NotFoundError, WorkbenchError
from core.monitor.live import accuracy, live_drift, traffic
from core.monitor.public import AlertPublic, DriftReport, VersionTraffic
from core.store import (
    Alert,
    Deployment,
    ModelVersion,
    MonitorConfig,
    RegisteredModel,
    lock_for_write,
    utcnow,
)
from core.store.audit import record
from core.store.scope import DEFAULT_WORKSPACE, model_key

log = logging.getLogger("workbench.alerts")
CHECK_EVERY_S = 30.0
SAME_WINDOW_S = 0.8 * CHECK_EVERY_S
PREDICTION = "__prediction__"  # the DRIFT key of the prediction mix (not a feature)
# what PERFORMANCE compares live feedback with: the version's validation score in this
# metric (its direction comes from the metric catalogue)
PERFORMANCE_METRIC = {Task.BINARY: "accuracy", Task.MULTICLASS: "accuracy", Task.REGRESSION: "rmse"}


@dataclass(frozen=True)
class Observation:
    """One window's verdict for one alert key."""

    model: str
    version: int | None
    kind: AlertKind
    bad: bool
    message: str = ""
    value: float | None = None
    threshold: float | None = None
    feature: str = ""


def new_config(model: str) -> MonitorConfig:
    """A model's alert rules before anyone set them: the ERROR / LATENCY thresholds and the
    minimum requests per window are the guard-rail defaults (`GuardRails`), the one place
    those numbers are declared."""
    return MonitorConfig(model_name=model, **DEFAULT_GUARD_RAILS.as_dict())


def get_config(model: str, *, session: Session) -> MonitorConfig:
    cfg = session.exec(select(MonitorConfig).where(MonitorConfig.model_name == model)).first()
    return cfg or new_config(model)


def set_config(model: str, *, session: Session, actor: str | None = None,
               **fields: Any) -> MonitorConfig:
    unknown = set(fields) - set(MonitorConfig.model_fields) - {"id", "model_name"}
    if unknown:
        raise WorkbenchError(f"Unknown monitor settings: {', '.join(sorted(unknown))}.")
    if fields.get("webhook_url"):
        check_webhook_url(fields["webhook_url"])  # http(s), and no internal address (SSRF)
    lock_for_write(session)
    if session.exec(select(RegisteredModel).where(RegisteredModel.name == model)
                    ).first() is None:
        raise NotFoundError(f"No model named {model!r}.")
    cfg = session.exec(select(MonitorConfig).where(MonitorConfig.model_name == model)).first()
    cfg = cfg or new_config(model)
    for k, v in fields.items():
        setattr(cfg, k, v)
    session.add(cfg)
    record(session, "monitor.config", f"model:{model}", actor=actor, **fields)
    session.commit()
    return cfg


def _utc(moment: datetime) -> datetime:
    """Stored datetimes come back naive from some backends; all of ours are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _apply(obs: Observation, now: datetime, cfg: MonitorConfig, session: Session
           ) -> Alert | None:
    """One window's verdict on its key, in the caller's (write-locked) transaction; the
    alert if it just opened."""
    alert = session.exec(select(Alert).where(
        Alert.model_name == obs.model, Alert.version == obs.version, Alert.kind == obs.kind,
        Alert.feature == obs.feature, Alert.state.in_(UNRESOLVED))
        .with_for_update()).first()
    if not obs.bad:
        if alert is not None:
            move_alert(alert, AlertState.RESOLVED, now)
            session.add(alert)
        return None
    if alert is None:
        alert = Alert(model_name=obs.model, version=obs.version, kind=obs.kind,
                      feature=obs.feature, severity=obs.kind.severity,
                      state=AlertState.PENDING, first_seen_at=now)
    elif alert.consecutive and _utc(now) - _utc(alert.last_seen_at) < timedelta(
            seconds=SAME_WINDOW_S):
        return None  # another checker already counted this window
    alert.consecutive += 1
    alert.last_seen_at = now
    alert.message, alert.value, alert.threshold = obs.message, obs.value, obs.threshold
    opened = None
    if alert.state == AlertState.PENDING and alert.consecutive >= cfg.consecutive:
        move_alert(alert, AlertState.OPEN, now)
        opened = alert
    session.add(alert)
    session.flush()
    if opened is not None:
        record(session, "alert.open", f"model:{obs.model}", actor="monitor",
               reason=obs.message, kind=obs.kind, version=obs.version, alert_id=alert.id)
    return opened


def observe_all(observations: list[Observation], now: datetime | None = None, *,
                session: Session) -> list[Alert]:
    """Apply windows' verdicts in one transaction; returns the alerts that just opened."""
    now = now or utcnow()
    configs: dict[str, MonitorConfig] = {}
    lock_for_write(session)
    opened = []
    for obs in observations:
        cfg = configs.get(obs.model) or configs.setdefault(
            obs.model, get_config(obs.model, session=session))
        if (alert := _apply(obs, now, cfg, session)) is not None:
            opened.append(alert)
    session.commit()
    return opened


def observe(obs: Observation, now: datetime | None = None, *, session: Session
            ) -> Alert | None:
    """Apply one window's verdict; returns the alert if it just opened."""
    opened = observe_all([obs], now, session=session)
    return opened[0] if opened else None


def drift_observations(report: DriftReport) -> list[Observation]:
    """A drift report as DRIFT verdicts: one key per feature."""
    return [Observation(report.model, report.version, AlertKind.DRIFT, r.drifted,
                        f"{r.feature} drifted ({r.test}, effect {r.effect_size})",
                        r.effect_size, r.threshold, feature=r.feature)
            for r in report.results]


def list_alerts(model: str | None = None, states: tuple[AlertState, ...] = LISTED, *,
                session: Session) -> list[AlertPublic]:
    q = select(Alert).where(Alert.state.in_(states)).order_by(Alert.id.desc())
    if model:
        q = q.where(Alert.model_name == model)
    return [AlertPublic.of(a) for a in session.exec(q).all()]


def deployed_models(*, session: Session) -> list[str]:
    """Models that have a deployment: the ones the monitor checks. Each is the model's
    `ModelKey` (its workspace with it): an unscoped monitor finds every workspace's."""
    rows = session.exec(select(RegisteredModel.workspace, RegisteredModel.name).join(
        Deployment, Deployment.model_id == RegisteredModel.id)).all()
    return [model_key(ws or DEFAULT_WORKSPACE, name) for ws, name in rows]


def check(model: str, window: str = "5m", now: datetime | None = None, *,
          session: Session) -> list[Alert]:
    """Evaluate one window for every deployed version of `model` (reads first, then one
    write transaction for all verdicts); returns alerts that opened."""
    now = now or utcnow()
    cfg = get_config(model, session=session)
    state = get_state(model, session=session)
    live = traffic(model, window, now=now, session=session).versions
    observations: list[Observation] = []
    for version in [v for v in (state.stable, state.candidate) if v is not None]:
        stats = live.get(str(version))
        # judged on the requests it scored (ok + failed): rejected ones are the caller's
        enough = stats is not None and stats.ok + stats.failed >= cfg.min_requests
        err = stats.error_rate if enough else 0.0
        p99 = (stats.latency_p99_ms or 0.0) if enough else 0.0
        observations += [
            Observation(model, version, AlertKind.ERROR, enough and err > cfg.max_error_rate,
                        f"{model}:{version} error rate {err:.1%} > {cfg.max_error_rate:.1%}",
                        err, cfg.max_error_rate),
            Observation(model, version, AlertKind.LATENCY, enough and p99 > cfg.max_p99_ms,
                        f"{model}:{version} p99 latency {p99:.0f} ms > {cfg.max_p99_ms:.0f} ms",
                        p99, cfg.max_p99_ms)]
        observations += [obs for obs in (
            _performance(model, version, window, now, cfg, session),
            _prediction_drift(model, version, stats, cfg, session)) if obs is not None]
        observations += _feature_drift(model, version, window, now, session)
    return observe_all(observations, now, session=session)


def _feature_drift(model: str, version: int, window: str, now: datetime, session: Session
                   ) -> list[Observation]:
    """One DRIFT key per feature, from the rows the version scored in the window."""
    try:
        report = live_drift(model, window, version, now=now, session=session)
    except WorkbenchError:
        return []
    return [Observation(model, version, AlertKind.DRIFT, r.drifted,
                        f"{model}:{version} feature {r.feature!r} drifted ({r.test}, "
                        f"effect {r.effect_size:.3g})" if r.effect_size is not None
                        else "", r.effect_size, r.threshold, feature=r.feature)
            for r in report.results]


def _version(model: str, version: int, session: Session) -> ModelVersion | None:
    return session.exec(select(ModelVersion).join(RegisteredModel).where(
        RegisteredModel.name == model, ModelVersion.version == version)).first()


def _prediction_drift(model: str, version: int, stats: VersionTraffic | None,
                      cfg: MonitorConfig, session: Session) -> Observation | None:
    """The live prediction mix against the version's out-of-fold prediction mix (Jensen-Shannon
    distance; classification only)."""
    mv = _version(model, version, session)
    ref = (mv.evaluation.get("reference") or {}).get("prediction") if mv else None
    if ref is None or ref.get("type") != "categorical":
        return None
    live = {k: v for k, v in (stats.predictions if stats else {}).items()
            if k not in ("n", "sum")}
    n = sum(live.values())
    if n < cfg.min_requests:
        return Observation(model, version, AlertKind.DRIFT, False, feature=PREDICTION)
    labels = sorted(set(ref["frequencies"]) | set(live))
    p = [ref["frequencies"].get(k, 0.0) for k in labels]
    q = [live.get(k, 0) / n for k in labels]
    js = float(jensenshannon(p, q, base=2))
    return Observation(model, version, AlertKind.DRIFT, js > cfg.max_prediction_drift,
                       f"{model}:{version} prediction mix drifted (Jensen-Shannon {js:.2f} > "
                       f"{cfg.max_prediction_drift})", js, cfg.max_prediction_drift,
                       feature=PREDICTION)


def _performance(model: str, version: int, window: str, now: datetime, cfg: MonitorConfig,
                 session: Session) -> Observation | None:
    """The live score from feedback against the version's validation score in the same
    metric (accuracy, or RMSE for regression), allowed to be worse by `max_accuracy_drop`."""
    mv = _version(model, version, session)
    if mv is None:
        return None
    metric = METRICS[PERFORMANCE_METRIC[Task(mv.task)]]
    live = accuracy(model, mv.task, window, now=now, session=session).get(str(version))
    ref = mv.metrics.get(metric.name)
    if not live or live["n"] < cfg.min_requests or ref is None or metric.name not in live:
        return Observation(model, version, AlertKind.PERFORMANCE, False)  # nothing to judge
    cur = live[metric.name]
    if metric.greater_is_better:
        bad = cur < ref * (1 - cfg.max_accuracy_drop)
        shown = f"live {metric.name} {cur:.1%} vs validation {ref:.1%}"
    else:
        bad = cur > ref * (1 + cfg.max_accuracy_drop)
        shown = f"live {metric.name.upper()} {cur:.4g} vs validation {ref:.4g}"
    return Observation(model, version, AlertKind.PERFORMANCE, bad, f"{model}:{version} {shown}",
                       cur, ref)
