"""What readers see of jobs, trials and schedules: the one shape of each on the wire (GET
/v1/jobs, `workbench jobs --json`, the pages), the same JSON as ever."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from core.jobs.states import JobKind, JobState, Trigger
from core.store import Job, JobTransition, Schedule, Trial
from core.store.shapes import Params

# written as `datetime.isoformat()` writes it, as the API and CLI always have
IsoDatetime = Annotated[datetime, PlainSerializer(lambda d: d.isoformat(), return_type=str,
                                                  when_used="json")]
_FROZEN = ConfigDict(frozen=True)


class JobPublic(BaseModel):
    """A job as readers see it: state, request, progress, cost, the version it registered,
    and the promotion gate's verdict for a retrain."""

    model_config = _FROZEN

    id: int
    state: JobState
    kind: JobKind
    trigger: Trigger
    model: str
    target: str
    task: str
    metric: str
    settings: dict[str, Any] = Field(description="The training request's settings.")
    progress: dict[str, Any] = Field(description="trials_done, best_score, metric, notes…")
    trials: int | None = Field(description="Trials finished so far.")
    best: float | None = Field(description="The best single trial's CV score so far.")
    version_id: int | None
    attempts: int
    cpu_seconds: float
    peak_memory_mb: float
    cancel_requested: bool
    pause_requested: bool
    gate: dict[str, Any] | None = Field(description="The promotion gate's verdict.")
    error: str | None
    created_at: IsoDatetime | None
    started_at: IsoDatetime | None
    finished_at: IsoDatetime | None

    @classmethod
    def of(cls, job: Job) -> JobPublic:
        return cls(id=job.id, state=job.state, kind=job.kind, trigger=job.trigger,
                   model=job.model_name, target=job.target, task=job.task, metric=job.metric,
                   settings=job.settings, progress=job.progress,
                   trials=job.progress.get("trials_done"), best=job.progress.get("best_score"),
                   version_id=job.version_id, attempts=job.attempts,
                   cpu_seconds=round(job.cpu_seconds, 2),
                   peak_memory_mb=round(job.peak_memory_mb, 1),
                   cancel_requested=job.cancel_requested, pause_requested=job.pause_requested,
                   gate=job.gate or None, error=job.error, created_at=job.created_at,
                   started_at=job.started_at, finished_at=job.finished_at)

    @property
    def budget_s(self) -> float:
        return float(self.settings.get("budget") or 60.0)


class TransitionPublic(BaseModel):
    """One recorded move of a job's state."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    from_state: JobState | None = Field(alias="from")
    to_state: JobState = Field(alias="to")
    reason: str
    at: IsoDatetime

    @classmethod
    def of(cls, t: JobTransition) -> TransitionPublic:
        return cls(from_state=t.from_state, to_state=t.to_state, reason=t.reason, at=t.at)


class JobDetailPublic(JobPublic):
    """A job with its history of state changes (GET /v1/jobs/{id})."""

    transitions: list[TransitionPublic]


class TrialPublic(BaseModel):
    """One evaluated candidate of a job: a leaderboard row."""

    model_config = _FROZEN

    number: int
    estimator: str
    params: Params
    metric: str
    cv_mean: float | None
    cv_std: float | None
    fit_time_s: float | None
    predict_ms_per_1k: float | None
    status: str
    reason: str

    @classmethod
    def of(cls, t: Trial) -> TrialPublic:
        return cls(number=t.number, estimator=t.estimator, params=t.params, metric=t.metric,
                   cv_mean=t.cv_mean, cv_std=t.cv_std, fit_time_s=t.fit_time_s,
                   predict_ms_per_1k=t.predict_ms_per_1k, status=t.status, reason=t.reason)


class SchedulePublic(BaseModel):
    """A retraining schedule: when it fires next, and the gate a retrain must pass."""

    model_config = _FROZEN

    id: int
    model: str
    cron: str
    paused: bool
    auto_canary: bool
    gate_min_abs: float
    gate_min_rel: float
    settings: dict[str, Any] = Field(description="Settings over the model's last ones.")
    next_run_at: IsoDatetime | None
    last_run_at: IsoDatetime | None

    @classmethod
    def of(cls, s: Schedule) -> SchedulePublic:
        return cls(id=s.id, model=s.model_name, cron=s.cron, paused=s.paused,
                   auto_canary=s.auto_canary, gate_min_abs=s.gate_min_abs,
                   gate_min_rel=s.gate_min_rel, settings=s.settings,
                   next_run_at=s.next_run_at, last_run_at=s.last_run_at)


class ScheduleDeleted(BaseModel):
    deleted: int
