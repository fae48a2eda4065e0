"""The shapes alerts and drift reports have outside core: `GET /v1/alerts` and
`POST /v1/alerts/{id}/ack`, `GET|POST /v1/models/{name}/drift`, the CLI's `alerts`, `ack` and
`drift --json`, the Monitor page. The JSON is what it always was (ARCHITECTURE.md Part 1):
an empty feature or action is null, timestamps are `datetime.isoformat()` text."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from core.deploy.enums import AlertKind, AlertState, Severity
from core.public import IsoDatetime
from core.store import Alert


class AlertPublic(BaseModel):
    id: int
    model: str
    version: int | None
    kind: AlertKind
    feature: str | None
    severity: Severity
    state: AlertState
    message: str
    value: float | None
    threshold: float | None
    consecutive: int
    action: str | None
    first_seen_at: IsoDatetime
    opened_at: IsoDatetime | None
    acknowledged_at: IsoDatetime | None
    resolved_at: IsoDatetime | None

    @classmethod
    def of(cls, a: Alert) -> AlertPublic:
        return cls(id=a.id, model=a.model_name, version=a.version, kind=a.kind,
                   feature=a.feature or None, severity=a.severity, state=a.state,
                   message=a.message, value=a.value, threshold=a.threshold,
                   consecutive=a.consecutive, action=a.action or None,
                   first_seen_at=a.first_seen_at, opened_at=a.opened_at,
                   acknowledged_at=a.acknowledged_at, resolved_at=a.resolved_at)


class FeatureDriftPublic(BaseModel):
    """One feature's verdict (see `core.monitor.drift`): the test used, its statistic and
    p-value (p-value tests only), the effect size, PSI, the threshold it was held to."""

    model_config = ConfigDict(from_attributes=True)

    feature: str
    test: str
    statistic: float | None
    p_value: float | None
    effect_size: float | None
    psi: float | None
    threshold: float
    drifted: bool
    n: int
    note: str = ""


class DriftReport(BaseModel):
    """A batch against a version's training data (`workbench drift`, `POST .../drift`)."""

    model: str
    version: int
    rows: int
    missing_columns: list[str]
    features: int
    drifted: list[str]
    share_drifted: float
    results: list[FeatureDriftPublic]
    alerts_opened: list[int] | None = None  # only when asked to raise alerts


class LiveDriftReport(BaseModel):
    """The rows a version scored in a window against its training data, with prediction and
    label (concept) drift from the fed-back labels (`GET .../drift`, the Monitor page)."""

    model: str
    version: int
    window: str
    rows: int
    features: int
    drifted: list[str]
    share_drifted: float
    results: list[FeatureDriftPublic]
    prediction: FeatureDriftPublic | None
    label: FeatureDriftPublic | None


class VersionTraffic(BaseModel):
    """One version's requests in a window, by outcome (rejected ones are the caller's and
    not in the error rate), latency and prediction mix."""

    requests: int
    ok: int
    failed: int
    rejected: int
    errors: int
    error_rate: float
    latency_mean_ms: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    predictions: dict[str, int | float]
    latency_p95_ms: float | None
    rate_per_s: float


class SeriesPoint(BaseModel):
    """One version's requests in one step of the window (the charts)."""

    at: str
    version: int
    requests: int
    ok: int
    failed: int
    rejected: int
    errors: int
    latency_mean_ms: float
    error_rate: float


class Traffic(BaseModel):
    model: str
    window: str
    versions: dict[str, VersionTraffic]
    series: list[SeriesPoint]
    latency_buckets_ms: list[int | float]


class MonitorReport(Traffic):
    """`GET /v1/models/{name}/monitor`, `workbench monitor --json`: traffic per version and
    the scores of fed-back predictions (`core.deploy.scores`)."""

    accuracy: dict[str, dict[str, int | float]]


class LivePoint(BaseModel):
    """One version in one step of a window (`core.monitor.series`): every step is present,
    with 0 requests and no rates where nothing came. `score` is the live score (the
    series' `metric`) of the `labelled` predictions made in the step."""

    at: IsoDatetime
    version: int
    requests: int
    failed: int
    rejected: int
    error_rate: float | None
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    labelled: int
    score: float | None


class LiveSeries(BaseModel):
    """A model's live figures per version per `step` from `start` to `end`, and each
    version's validation score in the same metric (what the PERFORMANCE alert compares)."""

    model: str
    window: str
    step: str
    start: IsoDatetime
    end: IsoDatetime
    metric: str
    greater_is_better: bool
    validation: dict[int, float]
    points: list[LivePoint]


class MonitorConfigPublic(BaseModel):
    """A model's alert rules and the actions its alerts may take."""

    model_config = ConfigDict(from_attributes=True)

    id: int | None
    model_name: str
    consecutive: int
    max_error_rate: float
    max_p99_ms: float
    min_requests: int
    max_accuracy_drop: float
    max_prediction_drift: float
    rollback_on_alert: bool
    retrain_on_alert: bool
    webhook_url: str | None


__all__ = ["AlertPublic", "DriftReport", "FeatureDriftPublic", "LiveDriftReport", "LivePoint",
           "LiveSeries", "MonitorConfigPublic", "MonitorReport", "SeriesPoint", "Traffic",
           "VersionTraffic"]
