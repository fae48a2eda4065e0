"""Live metrics per model version over a window: traffic by outcome (ok / failed /
rejected), latency, error rate, prediction mix, and scores from feedback labels joined to
the predictions by request id (`core.deploy.scores`, over the metric catalogue)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlmodel import Session, delete, select

from core.deploy.scores import live_scores
from core.deploy.telemetry import BUCKETS_MS, Counter, quantile
from core.errors import WorkbenchError
from core.features.inputs import with_indicators
from core.monitor.drift import compare, summary
from core.monitor.public import FeatureDriftPublic, LiveDriftReport, MonitorReport, Traffic
from core.monitor.states import Window
from core.registry import resolve
from core.settings import get_settings
from core.store import (
    PredictionLog,
    RequestInput,
    RequestSample,
    ServingStat,
    lock_for_write,
    utcnow,
)


def traffic(name: str, window: str = "1h", now: datetime | None = None, *,
            session: Session) -> Traffic:
    """Per-version summary plus a time series for charts."""
    now = now or utcnow()
    w = Window.parse(window)
    span = w.delta
    rows = list(session.exec(select(ServingStat).where(ServingStat.model_name == name,
                                                       ServingStat.at >= now - span)).all())
    versions: dict[int, Counter] = {}
    for r in rows:
        versions.setdefault(r.version, Counter()).merge(Counter.of_row(r))
    per_version = {}
    for v, c in sorted(versions.items()):
        doc = c.summary()
        doc["latency_p95_ms"] = quantile(c.hist, 0.95)
        doc["rate_per_s"] = c.count / span.total_seconds()
        per_version[str(v)] = doc
    series = pd.DataFrame([{"at": r.at, "version": r.version, "requests": r.count,
                            "ok": r.count - r.errors - r.rejected, "failed": r.errors,
                            "rejected": r.rejected, "errors": r.errors,
                            "latency_sum_ms": r.latency_sum_ms} for r in rows])
    points: list[dict[str, Any]] = []
    if not series.empty:
        series["at"] = pd.to_datetime(series["at"], utc=True).dt.floor(w.series_step)
        grouped = series.groupby(["at", "version"], as_index=False).sum()
        scored = (grouped["requests"] - grouped["rejected"]).clip(1)
        grouped["latency_mean_ms"] = grouped["latency_sum_ms"] / scored
        grouped["error_rate"] = grouped["errors"] / scored
        grouped["at"] = grouped["at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        points = grouped.drop(columns=["latency_sum_ms"]).to_dict("records")
    return Traffic(model=name, window=w.value, versions=per_version, series=points,
                   latency_buckets_ms=BUCKETS_MS)


def _labels(actual: Any) -> list[Any]:
    return actual if isinstance(actual, list) else [actual]


def accuracy(name: str, task: str, window: str = "24h", now: datetime | None = None, *,
             session: Session) -> dict[str, dict[str, float | int]]:
    """Scores per version on requests whose true value was fed back in the window."""
    now = now or utcnow()
    since = now - Window.parse(window).delta
    logs = session.exec(select(PredictionLog).where(PredictionLog.model_name == name,
                                                    PredictionLog.actual.is_not(None),
                                                    PredictionLog.created_at >= since)).all()
    pairs: dict[int, tuple[list[Any], list[Any]]] = {}
    for log in logs:
        preds, actual = log.predictions, _labels(log.actual)
        if len(preds) != len(actual):
            continue
        p, a = pairs.setdefault(log.version, ([], []))
        p.extend(preds)
        a.extend(actual)
    return {str(v): live_scores(task, p, a) for v, (p, a) in sorted(pairs.items())}


def monitor_report(name: str, window: str = "5m", now: datetime | None = None, *,
                   session: Session) -> MonitorReport:
    """Traffic per version and the scores of fed-back predictions, in one window."""
    live = traffic(name, window, now, session=session)
    _, mv = resolve(name, session=session)
    return MonitorReport(**dict(live), accuracy=accuracy(name, mv.task, window, now,
                                                         session=session))


def compact(older_than: timedelta = timedelta(hours=1), step: str = "1min",
            now: datetime | None = None, *, session: Session) -> int:
    """Merge per-flush telemetry rows older than `older_than` into one row per version per
    `step`, so a week at 100 req/s is ~10k rows per version, not 600k, and drop logged
    request rows past WORKBENCH_INPUT_RETENTION_DAYS. One transaction; returns telemetry
    rows removed."""
    lock_for_write(session)
    now = now or utcnow()
    cutoff = now - older_than
    retention = get_settings().input_retention_days
    if retention:
        session.exec(delete(RequestInput).where(
            RequestInput.created_at < now - timedelta(days=retention)))
    old = session.exec(select(ServingStat).where(ServingStat.at < cutoff,
                                                 ServingStat.worker != "compacted")
                       .with_for_update(skip_locked=True)).all()  # another compactor's: skip
    groups: dict[tuple[str | None, str, int, datetime], Counter] = {}
    for r in old:
        at = pd.Timestamp(r.at).floor(step).to_pydatetime()
        groups.setdefault((r.workspace, r.model_name, r.version, at),
                          Counter()).merge(Counter.of_row(r))
        session.delete(r)
    for (workspace, name, version, at), c in groups.items():  # never across workspaces
        session.add(ServingStat(workspace=workspace, model_name=name, version=version,
                                worker="compacted", at=at,
                                count=c.count, errors=c.errors, rejected=c.rejected,
                                latency_sum_ms=c.latency_sum_ms,
                                latency_hist=c.hist, predictions=c.predictions))
    session.commit()
    return len(old) - len(groups)


def live_drift(name: str, window: str = "1h", version: int | None = None,
               now: datetime | None = None, *, session: Session) -> LiveDriftReport:
    """Per-feature drift of the rows a version scored in the window (sampled by the serving
    telemetry) against its training data, plus prediction drift and label (concept) drift
    from the fed-back labels."""
    now = now or utcnow()
    w = Window.parse(window)
    since = now - w.delta
    _, mv = resolve(f"{name}:{version}" if version else name, session=session)
    reference = mv.evaluation.get("reference")
    if not reference:
        raise WorkbenchError(f"{name}:{mv.version} has no reference profile; retrain it to "
                             "monitor drift.")
    samples = session.exec(select(RequestSample).where(
        RequestSample.model_name == name, RequestSample.version == mv.version,
        RequestSample.at >= since)).all()
    logs = session.exec(select(PredictionLog).where(
        PredictionLog.model_name == name, PredictionLog.version == mv.version,
        PredictionLog.created_at >= since)).all()
    # each request's rows are one price history for a market model: indicators per request
    frames = [with_indicators(mv, pd.DataFrame(sample.rows), warmed_up=True)
              for sample in samples if sample.rows]
    batch = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    results = compare(reference, batch) if not batch.empty else []
    predictions = [p for log in logs for p in log.predictions]
    labels = [a for log in logs if log.actual is not None for a in _labels(log.actual)]
    extra: dict[str, FeatureDriftPublic | None] = {}
    for key, values, ref in (("prediction", predictions, reference.get("prediction")),
                             ("label", labels, reference.get("target"))):
        if ref is None or not values:
            extra[key] = None
            continue
        (result,) = compare({"features": {key: ref}}, pd.DataFrame({key: values}))
        extra[key] = FeatureDriftPublic.model_validate(result)
    return LiveDriftReport(model=name, version=mv.version, window=w.value, rows=len(batch),
                           **summary(results),
                           results=[FeatureDriftPublic.model_validate(r) for r in results],
                           **extra)
