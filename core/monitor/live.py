"""Live metrics per model version over a window: traffic by outcome (ok / failed /
rejected), latency, error rate, prediction mix, and accuracy from feedback labels joined to
the predictions by request id."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlmodel import delete, select

from core.deploy.telemetry import BUCKETS_MS, Counter, quantile
from core.errors import WorkbenchError
from core.settings import get_settings
from core.store import (
    PredictionLog,
    RequestInput,
    RequestSample,
    ServingStat,
    session_scope,
    utcnow,
)

WINDOWS = {"5m": timedelta(minutes=5), "1h": timedelta(hours=1), "24h": timedelta(hours=24),
           "7d": timedelta(days=7)}
SERIES_STEP = {"5m": "10s", "1h": "1min", "24h": "15min", "7d": "2h"}


def window_delta(window: str) -> timedelta:
    if window not in WINDOWS:
        raise WorkbenchError(f"Unknown window {window!r}: use one of {', '.join(WINDOWS)}.")
    return WINDOWS[window]


def _stats(name: str, since: datetime) -> list[ServingStat]:
    with session_scope() as s:
        return list(s.exec(select(ServingStat).where(ServingStat.model_name == name,
                                                     ServingStat.at >= since)).all())


def _counter(r: ServingStat) -> Counter:
    return Counter.of_row(r)


def traffic(name: str, window: str = "1h", now: datetime | None = None) -> dict[str, Any]:
    """Per-version summary plus a time series for charts."""
    now = now or utcnow()
    span = window_delta(window)
    rows = _stats(name, now - span)
    versions: dict[int, Counter] = {}
    for r in rows:
        versions.setdefault(r.version, Counter()).merge(_counter(r))
    summary = {}
    for v, c in sorted(versions.items()):
        doc = c.summary()
        doc["latency_p95_ms"] = quantile(c.hist, 0.95)
        doc["rate_per_s"] = c.count / span.total_seconds()
        summary[str(v)] = doc
    series = pd.DataFrame([{"at": r.at, "version": r.version, "requests": r.count,
                            "ok": r.count - r.errors - r.rejected, "failed": r.errors,
                            "rejected": r.rejected, "errors": r.errors,
                            "latency_sum_ms": r.latency_sum_ms} for r in rows])
    points: list[dict[str, Any]] = []
    if not series.empty:
        series["at"] = pd.to_datetime(series["at"], utc=True).dt.floor(SERIES_STEP[window])
        grouped = series.groupby(["at", "version"], as_index=False).sum()
        scored = (grouped["requests"] - grouped["rejected"]).clip(1)
        grouped["latency_mean_ms"] = grouped["latency_sum_ms"] / scored
        grouped["error_rate"] = grouped["errors"] / scored
        grouped["at"] = grouped["at"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        points = grouped.drop(columns=["latency_sum_ms"]).to_dict("records")
    return {"model": name, "window": window, "versions": summary, "series": points,
            "latency_buckets_ms": BUCKETS_MS}


def accuracy(name: str, task: str, window: str = "24h",
             now: datetime | None = None) -> dict[str, dict[str, Any]]:
    """Metrics per version on requests whose true value was fed back in the window."""
    now = now or utcnow()
    since = now - window_delta(window)
    with session_scope() as s:
        logs = s.exec(select(PredictionLog).where(PredictionLog.model_name == name,
                                                  PredictionLog.actual.is_not(None),
                                                  PredictionLog.created_at >= since)).all()
    pairs: dict[int, tuple[list[Any], list[Any]]] = {}
    for log in logs:
        preds, actual = log.predictions, log.actual
        if not isinstance(actual, list):
            actual = [actual]
        if len(preds) != len(actual):
            continue
        p, a = pairs.setdefault(log.version, ([], []))
        p.extend(preds)
        a.extend(actual)
    return {str(v): _metrics(task, p, a) for v, (p, a) in sorted(pairs.items())}


def _metrics(task: str, preds: list[Any], actual: list[Any]) -> dict[str, Any]:
    from sklearn import metrics as skm

    if task == "regression":
        p, a = np.asarray(preds, dtype=float), np.asarray(actual, dtype=float)
        return {"n": len(a), "rmse": float(np.sqrt(np.mean((p - a) ** 2))),
                "mae": float(np.mean(np.abs(p - a)))}
    p, a = [str(x) for x in preds], [str(x) for x in actual]
    return {"n": len(a), "accuracy": float(skm.accuracy_score(a, p)),
            "f1": float(skm.f1_score(a, p, average="macro"))}


def compact(older_than: timedelta = timedelta(hours=1), step: str = "1min",
            now: datetime | None = None) -> int:
    """Merge per-flush telemetry rows older than `older_than` into one row per version per
    `step`, so a week at 100 req/s is ~10k rows per version, not 600k, and drop logged
    request rows past WORKBENCH_INPUT_RETENTION_DAYS. Returns telemetry rows removed."""
    now = now or utcnow()
    cutoff = now - older_than
    retention = get_settings().input_retention_days
    if retention:
        with session_scope(write=True) as s:
            s.exec(delete(RequestInput).where(
                RequestInput.created_at < now - timedelta(days=retention)))
    with session_scope(write=True) as s:
        old = s.exec(select(ServingStat).where(ServingStat.at < cutoff,
                                               ServingStat.worker != "compacted")
                     .with_for_update(skip_locked=True)).all()  # another compactor's rows: skip
        if not old:
            return 0
        groups: dict[tuple[str, int, datetime], Counter] = {}
        for r in old:
            at = pd.Timestamp(r.at).floor(step).to_pydatetime()
            groups.setdefault((r.model_name, r.version, at), Counter()).merge(_counter(r))
            s.delete(r)
        for (name, version, at), c in groups.items():
            s.add(ServingStat(model_name=name, version=version, worker="compacted", at=at,
                              count=c.count, errors=c.errors, rejected=c.rejected,
                              latency_sum_ms=c.latency_sum_ms,
                              latency_hist=c.hist, predictions=c.predictions))
        return len(old) - len(groups)


def live_drift(name: str, window: str = "1h", version: int | None = None,
               now: datetime | None = None) -> dict[str, Any]:
    """Per-feature drift of the rows a version scored in the window (sampled by the serving
    telemetry) against its training data, plus prediction drift and label (concept) drift
    from the fed-back labels."""
    from core.features.inputs import with_indicators
    from core.monitor.drift import compare, summary
    from core.registry import resolve

    now = now or utcnow()
    since = now - window_delta(window)
    with session_scope() as s:
        _, mv = resolve(f"{name}:{version}" if version else name, session=s)
    reference = mv.evaluation.get("reference")
    if not reference:
        raise WorkbenchError(f"{name}:{mv.version} has no reference profile; retrain it to "
                             "monitor drift.")
    with session_scope() as s:
        samples = s.exec(select(RequestSample).where(
            RequestSample.model_name == name, RequestSample.version == mv.version,
            RequestSample.at >= since)).all()
        logs = s.exec(select(PredictionLog).where(
            PredictionLog.model_name == name, PredictionLog.version == mv.version,
            PredictionLog.created_at >= since)).all()
    # each request's rows are one price history for a market model: indicators per request
    frames = [with_indicators(mv, pd.DataFrame(sample.rows), warmed_up=True)
              for sample in samples if sample.rows]
    batch = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    results = compare(reference, batch) if not batch.empty else []
    doc: dict[str, Any] = {"model": name, "version": mv.version, "window": window,
                           "rows": len(batch), **summary(results),
                           "results": [r.to_dict() for r in results]}
    predictions = [p for log in logs for p in log.predictions]
    labels = [a for log in logs if log.actual is not None
              for a in (log.actual if isinstance(log.actual, list) else [log.actual])]
    for key, values, ref in (("prediction", predictions, reference.get("prediction")),
                             ("label", labels, reference.get("target"))):
        if ref is None or not values:
            doc[key] = None
            continue
        (result,) = compare({"features": {key: ref}}, pd.DataFrame({key: values}))
        doc[key] = result.to_dict()
    return doc
