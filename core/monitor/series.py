"""Live figures per version as a time series over a whole window, for charts.

`core.monitor.live.traffic` answers the API with one point per step that *had* traffic, so a
burst (a simulator run, a batch job) drew one or two points and the time axis covered
seconds of an hour. Here every step of the window is a point for every version seen in it:
no requests is 0 requests (and no rate, no latency), so a line shows when traffic came and
stopped. Latency quantiles per step come from the summed histograms (the upper edge of the
bucket holding the quantile, as the guard rails read them); the score per step is the live
score of the predictions made in that step whose true value was fed back later
(`core.deploy.scores`, in the metric the PERFORMANCE alert judges: accuracy, RMSE).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pandas as pd
from sqlmodel import Session, select

from core.automl.metrics import METRICS
from core.deploy.scores import live_scores
from core.deploy.telemetry import Counter, quantile
from core.enums import Task
from core.errors import NotFoundError
from core.monitor.alerts import PERFORMANCE_METRIC
from core.monitor.public import LivePoint, LiveSeries
from core.monitor.states import Window
from core.registry import resolve
from core.store import PredictionLog, ServingStat, utcnow


def _utc(moment: datetime) -> pd.Timestamp:
    """Stored datetimes come back naive from SQLite; all of ours are UTC."""
    ts = pd.Timestamp(moment)
    return ts.tz_localize(UTC) if ts.tzinfo is None else ts.tz_convert(UTC)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def live_series(name: str, window: str = "1h", now: datetime | None = None, *,
                session: Session) -> LiveSeries:
    """Requests, error rate, latency p50/p95 and the live score per version per step of
    `window` (`Window.series_step`), every step present from the window's start to `now`."""
    now = now or utcnow()
    w = Window.parse(window)
    end = _utc(now)
    start = end - w.delta
    _, mv = resolve(name, session=session)
    metric = METRICS[PERFORMANCE_METRIC[Task(mv.task)]]
    stats = session.exec(select(ServingStat).where(ServingStat.model_name == name,
                                                   ServingStat.at >= start.to_pydatetime(),
                                                   ServingStat.at <= end.to_pydatetime())).all()
    labelled = session.exec(select(PredictionLog).where(
        PredictionLog.model_name == name, PredictionLog.actual.is_not(None),
        PredictionLog.created_at >= start.to_pydatetime(),
        PredictionLog.created_at <= end.to_pydatetime())).all()
    steps = pd.date_range(start.floor(w.series_step), end.floor(w.series_step),
                          freq=w.series_step)
    counters: dict[tuple[int, pd.Timestamp], Counter] = {}
    for row in stats:
        key = (row.version, _utc(row.at).floor(w.series_step))
        counters.setdefault(key, Counter()).merge(Counter.of_row(row))
    pairs: dict[tuple[int, pd.Timestamp], tuple[list[Any], list[Any]]] = {}
    for log in labelled:
        actual = log.actual if isinstance(log.actual, list) else [log.actual]
        if len(actual) != len(log.predictions):
            continue
        p, a = pairs.setdefault((log.version, _utc(log.created_at).floor(w.series_step)),
                                ([], []))
        p.extend(log.predictions)
        a.extend(actual)
    versions = sorted({v for v, _ in counters} | {v for v, _ in pairs})
    points = []
    for version in versions:
        for at in steps:
            c = counters.get((version, at), Counter())
            pred, act = pairs.get((version, at), ([], []))
            score = live_scores(mv.task, pred, act).get(metric.name) if pred else None
            points.append(LivePoint(
                at=at.to_pydatetime(), version=version, requests=c.count, failed=c.errors,
                rejected=c.rejected,
                error_rate=c.errors / c.scored if c.scored else None,
                latency_p50_ms=_finite(quantile(c.hist, 0.50)),
                latency_p95_ms=_finite(quantile(c.hist, 0.95)),
                labelled=len(act), score=score))
    validation = {}
    for version in versions:
        try:
            _, v = resolve(f"{name}:{version}", session=session)
        except NotFoundError:  # a version deleted since it served
            continue
        if (ref := (v.metrics or {}).get(metric.name)) is not None:
            validation[version] = float(ref)
    return LiveSeries(model=name, window=w.value, step=w.series_step,
                      start=start.to_pydatetime(), end=end.to_pydatetime(),
                      metric=metric.name, greater_is_better=metric.greater_is_better,
                      validation=validation, points=points)


__all__ = ["live_series"]
