"""The SQLModel tables: the one schema for SQLite and PostgreSQL.

Changing a table means adding an Alembic revision under `core/migrations/versions/`;
`tests/core/test_migrations.py` fails when the models and the migrations disagree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.store.scope import Owned
from core.store.shapes import (
    DatasetColumn,
    Evaluation,
    GateDoc,
    GuardRailsDoc,
    Params,
    ProgressDoc,
    SchemaColumn,
)


def utcnow() -> datetime:
    """Aware UTC; SQLModel stores it as UTC on SQLite and PostgreSQL alike."""
    return datetime.now(UTC)


# None must be SQL NULL, not the JSON text 'null': "IS NOT NULL" is how feedback and scorecard
# queries find labelled predictions (0006 converted rows written before).
NULLABLE_JSON = JSON(none_as_null=True)


def _json(default: Any = dict) -> Any:
    return Field(default_factory=default, sa_column=Column(JSON, nullable=False))


class Dataset(Owned, table=True):
    """An uploaded table, stored once per content fingerprint and workspace, immutable."""

    __table_args__ = (Index("uq_dataset_workspace_fingerprint", "workspace", "fingerprint",
                            unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    fingerprint: str = Field(index=True, max_length=64)
    name: str = Field(index=True, max_length=200)
    source_filename: str = Field(default="", max_length=500)
    path: str = Field(max_length=1000)
    n_rows: int
    n_cols: int
    size_bytes: int
    # SHA-256 of the stored file (encrypted or not); None: stored before 0012, not recorded
    stored_fingerprint: str | None = Field(default=None, max_length=64)
    columns: list[DatasetColumn] = _json(list)
    warnings: list[str] = _json(list)
    created_at: datetime = Field(default_factory=utcnow)


class Job(Owned, table=True):
    """One request to train; its state only moves through `core.jobs` transitions."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="search", max_length=20)  # search | fixed
    state: str = Field(default="PENDING", index=True, max_length=20)
    dataset_id: int | None = Field(default=None, foreign_key="dataset.id")
    model_name: str = Field(max_length=200)
    target: str = Field(max_length=500)
    task: str = Field(max_length=20)
    metric: str = Field(max_length=40)
    settings: dict[str, Any] = _json()
    progress: ProgressDoc = _json()
    version_id: int | None = None  # the ModelVersion.id it produced (no FK: versions point back)
    worker_id: str | None = Field(default=None, max_length=200)
    heartbeat_at: datetime | None = None
    cancel_requested: bool = False
    pause_requested: bool = False
    trigger: str = Field(default="manual", max_length=20)  # manual | api | schedule | alert
    schedule_id: int | None = Field(default=None, foreign_key="schedule.id")
    attempts: int = 0
    max_attempts: int = 3
    not_before: datetime | None = None  # retry backoff: not claimed before this time
    cpu_seconds: float = 0.0
    peak_memory_mb: float = 0.0
    gate: GateDoc = _json()  # promotion-gate verdict for scheduled/triggered retrains
    error: str | None = Field(default=None, sa_column=Column(Text))
    log: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None


class Schedule(Owned, table=True):
    """Recurring retraining of one model on its latest data."""

    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(index=True, max_length=200)
    cron: str = Field(max_length=100)  # five-field cron, UTC
    settings: dict[str, Any] = _json()  # budget, metric, … for the jobs it creates
    paused: bool = False
    auto_canary: bool = False  # a retrain that passes the gate enters a canary
    gate_min_abs: float = 0.0   # must beat production by this much (oriented metric units)
    gate_min_rel: float = 0.0   # … and by this share of production's score
    last_run_at: datetime | None = None
    next_run_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)


class Worker(SQLModel, table=True):
    """A live job worker process; its heartbeat says it is alive."""

    id: str = Field(primary_key=True, max_length=200)
    host: str = Field(max_length=200)
    pid: int
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow)
    stopped_at: datetime | None = None


class JobTransition(Owned, table=True):
    """Append-only ledger of job state changes."""

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    from_state: str | None = Field(default=None, max_length=20)
    to_state: str = Field(max_length=20)
    reason: str = Field(default="", max_length=2000)
    at: datetime = Field(default_factory=utcnow)


class Trial(Owned, table=True):
    """One candidate pipeline evaluated inside a job: a leaderboard row."""

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id", index=True)
    number: int
    estimator: str = Field(max_length=100)
    params: Params = _json()
    metric: str = Field(max_length=40)
    cv_mean: float | None = None
    cv_std: float | None = None
    fit_time_s: float | None = None
    predict_ms_per_1k: float | None = None
    status: str = Field(default="ok", max_length=20)  # ok | pruned | failed
    reason: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)


class RegisteredModel(Owned, table=True):
    __table_args__ = (Index("uq_registeredmodel_workspace_name", "workspace", "name",
                            unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, max_length=200)
    description: str = Field(default="", max_length=2000)
    created_at: datetime = Field(default_factory=utcnow)


class ModelVersion(Owned, table=True):
    """An immutable trained pipeline plus everything needed to trust and explain it."""

    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_version"),
                      UniqueConstraint("model_id", "semver", name="uq_model_semver"))

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registeredmodel.id", index=True)
    version: int
    artifact_path: str = Field(max_length=1000)
    fingerprint: str = Field(max_length=64)  # of the plaintext: the identity, never changes
    size_bytes: int
    # SHA-256 of the stored bytes: equal to `fingerprint` unless encrypted (a new key, a new one)
    stored_fingerprint: str | None = Field(default=None, max_length=64)
    artifact_format: str = Field(default="skops", max_length=20)
    task: str = Field(max_length=20)
    target: str = Field(max_length=500)
    metric: str = Field(default="", max_length=40)
    score: float | None = None
    metrics: dict[str, float] = _json()
    evaluation: Evaluation = _json()
    input_schema: list[SchemaColumn] = _json(list)
    classes: list[Any] = _json(list)
    estimator: str = Field(default="", max_length=100)
    params: Params = _json()
    library_versions: dict[str, str] = _json()
    dataset_id: int | None = Field(default=None, foreign_key="dataset.id")
    dataset_fingerprint: str | None = Field(default=None, max_length=64)
    job_id: int | None = Field(default=None, foreign_key="job.id")
    parent_version: int | None = None
    # None | Staging | Archived (core.enums.Stage); Production is not stored: the holder of
    # the `production` alias is in it (core/registry/stages.py)
    stage: str = Field(default="None", max_length=20)
    semver: str = Field(default="", max_length=40)  # MAJOR.MINOR.PATCH, set once at registration
    # The running scikit-learn version on which a user accepted loading this version's
    # artifact although another version saved it (None: not accepted; see `workbench accept`).
    accepted_sklearn: str | None = Field(default=None, max_length=40)
    # The last ONNX export's parity check (core.onnx.parity), or why it cannot be exported;
    # None: never exported
    onnx_parity: dict[str, Any] | None = Field(default=None, sa_column=Column(NULLABLE_JSON))
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)


class Alias(Owned, table=True):
    __table_args__ = (UniqueConstraint("model_id", "name", name="uq_alias_name"),)

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registeredmodel.id", index=True)
    name: str = Field(max_length=100)
    version: int
    updated_at: datetime = Field(default_factory=utcnow)


class AliasEvent(Owned, table=True):
    """Every alias move, append-only: the promotion history."""

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registeredmodel.id", index=True)
    alias: str = Field(max_length=100)
    from_version: int | None = None
    to_version: int | None = None
    actor: str = Field(default="", max_length=200)
    reason: str = Field(default="", max_length=2000)
    at: datetime = Field(default_factory=utcnow)


class Deployment(Owned, table=True):
    """The traffic rule of one model: stable (= production alias), candidate, percent, mode."""

    id: int | None = Field(default=None, primary_key=True)
    model_id: int = Field(foreign_key="registeredmodel.id", unique=True)
    stable_version: int | None = None
    candidate_version: int | None = None
    percent: float = 0.0
    mode: str = Field(default="canary", max_length=20)
    steps: list[float] = Field(
        default_factory=lambda: [10.0, 50.0, 100.0], sa_column=Column(JSON, nullable=False)
    )
    guard_rails: GuardRailsDoc = _json()
    updated_at: datetime = Field(default_factory=utcnow)
    auto_advance: bool = False  # step the candidate forward when it holds over a step's window
    step_started_at: datetime | None = None  # when the current candidate percentage took effect
    revision: int = 0  # bumped on every change: workers compare it to refresh cheaply
    # per deployed version ("3": "onnx" | "python" | "auto"); absent or NULL: auto
    runtimes: dict[str, str] | None = Field(default=None, sa_column=Column(NULLABLE_JSON))


class AuditEvent(Owned, table=True):
    """Append-only log of who did what, when and why."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, index=True)
    actor: str = Field(default="", max_length=200)
    action: str = Field(max_length=100, index=True)
    entity: str = Field(default="", max_length=300)
    reason: str = Field(default="", max_length=2000)
    detail: dict[str, Any] = _json()


class ServingStat(Owned, table=True):
    """Per-version serving telemetry, one row per worker flush (about once a second)."""

    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(index=True, max_length=200)
    version: int
    worker: str = Field(default="", max_length=200)
    at: datetime = Field(default_factory=utcnow, index=True)
    count: int = 0  # requests that reached the version: ok + failed (errors) + rejected
    errors: int = 0
    rejected: int = 0  # of count: records that did not match the schema (a 422)
    latency_sum_ms: float = 0.0
    latency_hist: list[int] = _json(list)  # counts per bucket of core.deploy.telemetry.BUCKETS_MS
    predictions: dict[str, Any] = _json()  # label -> count (classification) or sum/n (regression)


class PredictionLog(Owned, table=True):
    """One served request: what answered, what the shadow said, and the label fed back later."""

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(index=True, unique=True, max_length=64)
    model_name: str = Field(index=True, max_length=200)
    version: int
    predictions: list[Any] = _json(list)
    shadow_version: int | None = None
    shadow_predictions: list[Any] | None = Field(default=None, sa_column=Column(NULLABLE_JSON))
    shadow_error: str | None = Field(default=None, max_length=2000)
    actual: list[Any] | None = Field(default=None, sa_column=Column(NULLABLE_JSON))
    feedback_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow, index=True)


class RequestInput(Owned, table=True):
    """The rows one logged request asked to score, kept beside its PredictionLog row (same
    request id) so labels fed back later can become training data (`core.jobs.fresh_data`).
    A table of its own so the monitor's prediction-log queries never load feature rows.
    `rows`: a list of records, or for a request sent as columns (V2) `{"columns": [...],
    "data": [[...], ...]}`; read it through `core.deploy.columns.stored_records`."""

    request_id: str = Field(primary_key=True, max_length=64)
    model_name: str = Field(index=True, max_length=200)
    rows: list[dict[str, Any]] | dict[str, Any] = _json(list)
    created_at: datetime = Field(default_factory=utcnow, index=True)  # pruned by age


class MonitorConfig(Owned, table=True):
    """Per-model alert rules and the actions alerts may take (opt-in)."""

    __table_args__ = (Index("uq_monitorconfig_workspace_model_name", "workspace", "model_name",
                            unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(index=True, max_length=200)
    consecutive: int = 3            # bad windows in a row before an alert opens
    # the guard-rail defaults, declared in core.deploy.rails.GuardRails (which the store
    # cannot import); core.monitor.alerts.new_config fills a new row from there, and
    # tests/core/test_guard_rails.py holds these equal to it
    max_error_rate: float = 0.05
    max_p99_ms: float = 1000.0
    min_requests: int = 100
    max_accuracy_drop: float = 0.05  # relative to the version's validation score
    max_prediction_drift: float = 0.2  # Jensen-Shannon distance of the prediction mix
    rollback_on_alert: bool = False
    retrain_on_alert: bool = False
    webhook_url: str | None = Field(default=None, max_length=1000)


class Alert(Owned, table=True):
    """One alert: pending until its condition held for `consecutive` windows, then open until
    acknowledged or resolved. At most one unresolved alert per (model, version, kind, feature)."""

    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(index=True, max_length=200)
    version: int | None = None
    kind: str = Field(max_length=20)  # DRIFT | PERFORMANCE | ERROR | LATENCY
    feature: str = Field(default="", max_length=500)
    severity: str = Field(default="warning", max_length=20)
    state: str = Field(default="pending", index=True, max_length=20)
    message: str = Field(default="", max_length=2000)
    value: float | None = None
    threshold: float | None = None
    consecutive: int = 0
    action: str = Field(default="", max_length=500)
    first_seen_at: datetime = Field(default_factory=utcnow)
    last_seen_at: datetime = Field(default_factory=utcnow)
    opened_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = Field(default=None, max_length=200)
    resolved_at: datetime | None = None


class RequestSample(Owned, table=True):
    """A bounded random sample of the rows a version was asked to score, one row per
    telemetry flush: what live feature drift is measured on."""

    id: int | None = Field(default=None, primary_key=True)
    model_name: str = Field(index=True, max_length=200)
    version: int
    at: datetime = Field(default_factory=utcnow, index=True)
    seen: int = 0  # rows scored in the flush interval (the sample holds at most SAMPLE_ROWS)
    rows: list[dict[str, Any]] = _json(list)


class Workspace(SQLModel, table=True):
    """A tenant: every `Owned` row names one (core/store/scope.py). Global, not owned."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(index=True, unique=True, max_length=63)
    created_at: datetime = Field(default_factory=utcnow)
