"""Request bodies of the REST API (documented in /openapi.json)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from core.store.shapes import Record

MAX_VERSION = 2**31 - 1  # fits every database's INTEGER
TARGET_HELP = ("The column of the records holding the true values. Needed for a version that "
               "records no target (an imported one); otherwise it must be the version's own.")


# -- prediction and models ------------------------------------------------------------------
class PredictRequest(BaseModel):
    records: list[Record] = Field(min_length=1, max_length=100_000)
    request_key: str | None = Field(default=None, max_length=500,
                                    description="Sticky routing key, e.g. a user id.")
    coverage: float | None = Field(
        default=None, gt=0, lt=1,
        description="Regression: the prediction intervals' coverage, one of the levels the "
                    "version stores (0.5, 0.8, 0.9, 0.95, 0.99 when it had enough rows); "
                    "default the version's own (0.9).")


class PredictResponse(BaseModel):
    predictions: list[Any]
    probabilities: list[dict[str, float]] | None
    model: str
    version: int
    request_id: str
    intervals: list[list[float]] | None = Field(
        default=None, description="Regression: [lower, upper] per record, a split-conformal "
        "prediction interval; null for classifiers and versions trained without one.")


class FeedbackRequest(BaseModel):
    request_id: str = Field(min_length=1, max_length=64)
    actual: Any = Field(description="The true value, or a list of them for a multi-record "
                                    "request.")


class EvaluateRequest(BaseModel):
    records: list[Record] = Field(min_length=1, max_length=1_000_000)
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    target: str | None = Field(default=None, min_length=1, max_length=500,
                               description=TARGET_HELP)


class CompareRequest(BaseModel):
    versions: list[str] = Field(min_length=1, max_length=20)
    records: list[Record] | None = Field(default=None, max_length=1_000_000)
    target: str | None = Field(default=None, min_length=1, max_length=500,
                               description=TARGET_HELP)


class LoadRequest(BaseModel):
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION)


# -- deployments ----------------------------------------------------------------------------
class DeployRequest(BaseModel):
    version: int = Field(ge=1, le=MAX_VERSION)
    percent: float = Field(default=10.0, ge=0, le=100)
    mode: Literal["canary", "shadow"] = "canary"
    steps: list[float] | None = Field(default=None, min_length=1, max_length=20)
    guard_rails: dict[str, float] | None = None
    auto_advance: bool | None = None
    reason: str = Field(default="", max_length=2000)
    # what answers this version (core.deploy.enums.Runtime); None keeps the version's (auto)
    runtime: Literal["auto", "python", "onnx"] | None = None


class ReasonRequest(BaseModel):
    reason: str = Field(default="", max_length=2000)


# -- jobs and schedules ---------------------------------------------------------------------
# POST /v1/jobs takes core.automl.request.TrainingRequest, the request every adapter builds
class ScheduleRequest(BaseModel):
    model: str
    when: str = Field(description="HH:MM daily (UTC) or a five-field cron expression.")
    budget: float | None = Field(default=None, gt=0)
    auto_canary: bool = False
    min_gain: float = Field(default=0.0, ge=0)
    min_gain_rel: float = Field(default=0.0, ge=0)


# -- monitoring -----------------------------------------------------------------------------
class DriftRequest(BaseModel):
    records: list[Record] = Field(min_length=1, max_length=1_000_000)
    version: int | None = Field(default=None, ge=1)
    alert: bool = Field(default=False, description="Feed the result into DRIFT alerts.")


class MonitorConfigRequest(BaseModel):
    consecutive: int | None = Field(default=None, ge=1, le=100)
    max_error_rate: float | None = Field(default=None, ge=0, le=1)
    max_p99_ms: float | None = Field(default=None, gt=0)
    min_requests: int | None = Field(default=None, ge=1)
    max_accuracy_drop: float | None = Field(default=None, ge=0, le=1)
    rollback_on_alert: bool | None = None
    retrain_on_alert: bool | None = None
    webhook_url: str | None = Field(default=None, max_length=1000)
