"""REST endpoints for training jobs, retraining and schedules.

Every handler is a thin call into core.jobs / core.usecases on the request's session; the
body of POST /v1/jobs is the `TrainingRequest` every other adapter builds, and responses are
the `*Public` records of `core.jobs.public`. Errors are WorkbenchErrors that the app turns
into `{"error", "detail"}` JSON with a 4xx status.
"""

from __future__ import annotations

from fastapi import APIRouter

from app.api.deps import DbDep, PrincipalDep, SessionDep
from app.api.schemas import ScheduleRequest
from app.workers import ensure_local_worker
from core.automl.request import TrainingRequest
from core.jobs import ledger
from core.jobs.public import JobDetailPublic, JobPublic, ScheduleDeleted, SchedulePublic
from core.jobs.reaper import reap_lost_jobs
from core.jobs.schedules import create_schedule, delete_schedule, list_schedules, set_paused
from core.jobs.states import Trigger
from core.jobs.views import read_job_detail, read_jobs
from core.usecases.inspection import (
    JobLogs,
    JobTrials,
    Suggestions,
    job_logs,
    job_suggestions,
    job_trials,
)
from core.usecases.retraining import retrain
from core.usecases.training import submit

router = APIRouter(tags=["jobs"])


@router.post("/v1/jobs", status_code=201, response_model=JobPublic)
def create_job(body: TrainingRequest, session: SessionDep,
               principal: PrincipalDep, db: DbDep) -> JobPublic:
    """Queue a search (the default), or with `"kind": "fixed"`, `"estimator"` and `"params"`
    one configuration (as `workbench train`). Every option of `workbench automl` is a field:
    `n_trials` and `search_space` included."""
    job = submit(body, session=session, trigger=Trigger.API, actor=principal.actor)
    ensure_local_worker(db)
    return JobPublic.of(job)


@router.get("/v1/jobs", response_model=list[JobPublic])
def jobs(session: SessionDep, limit: int = 100) -> list[JobPublic]:
    return read_jobs(session=session, limit=max(1, min(limit, 1000)), by="api")


@router.get("/v1/jobs/{job_id}", response_model=JobDetailPublic)
def job(job_id: int, session: SessionDep) -> JobDetailPublic:
    return read_job_detail(job_id, session=session, by="api")


@router.get("/v1/jobs/{job_id}/logs", response_model=JobLogs)
def logs(job_id: int, session: SessionDep) -> JobLogs:
    """The job's captured log and state changes (`workbench logs ID`)."""
    reap_lost_jobs(session=session, by="api")
    return job_logs(job_id, session=session)


@router.get("/v1/jobs/{job_id}/trials", response_model=JobTrials)
def trials(job_id: int, session: SessionDep) -> JobTrials:
    """The leaderboard: every trial ranked, pruned and failed ones last with their reason."""
    return job_trials(job_id, session=session)


@router.get("/v1/jobs/{job_id}/suggestions", response_model=Suggestions)
def suggestions(job_id: int, session: SessionDep) -> Suggestions:
    """Advice drawn from the job's search (with the version it registered)."""
    return job_suggestions(job_id, session=session)


@router.post("/v1/jobs/{job_id}/cancel", response_model=JobPublic)
def cancel(job_id: int, session: SessionDep, principal: PrincipalDep) -> JobPublic:
    reap_lost_jobs(session=session, by="api")
    return JobPublic.of(ledger.request_cancel(job_id, session=session, actor=principal.actor))


@router.post("/v1/jobs/{job_id}/pause", response_model=JobPublic)
def pause(job_id: int, session: SessionDep, principal: PrincipalDep) -> JobPublic:
    reap_lost_jobs(session=session, by="api")
    return JobPublic.of(ledger.request_pause(job_id, True, session=session, actor=principal.actor))


@router.post("/v1/jobs/{job_id}/resume", response_model=JobPublic)
def resume(job_id: int, session: SessionDep, principal: PrincipalDep) -> JobPublic:
    reap_lost_jobs(session=session, by="api")
    return JobPublic.of(ledger.request_pause(job_id, False, session=session, actor=principal.actor))


@router.post("/v1/models/{name}/retrain", status_code=201, response_model=JobPublic)
def retrain_model(name: str, session: SessionDep, principal: PrincipalDep, db: DbDep) -> JobPublic:
    job = retrain(name, session=session, trigger=Trigger.API, actor=principal.actor)
    ensure_local_worker(db)
    return JobPublic.of(job)


@router.get("/v1/schedules", response_model=list[SchedulePublic])
def schedules(session: SessionDep) -> list[SchedulePublic]:
    return [SchedulePublic.of(s) for s in list_schedules(session=session)]


@router.post("/v1/schedules", status_code=201, response_model=SchedulePublic)
def add_schedule(body: ScheduleRequest, session: SessionDep,
                 principal: PrincipalDep) -> SchedulePublic:
    return SchedulePublic.of(create_schedule(
        body.model, body.when, session=session,
        settings={"budget": body.budget} if body.budget else {},
        auto_canary=body.auto_canary, gate_min_abs=body.min_gain,
        gate_min_rel=body.min_gain_rel, actor=principal.actor))


@router.post("/v1/schedules/{schedule_id}/pause", response_model=SchedulePublic)
def pause_schedule(schedule_id: int, session: SessionDep,
                   principal: PrincipalDep) -> SchedulePublic:
    return SchedulePublic.of(set_paused(schedule_id, True, session=session, actor=principal.actor))


@router.post("/v1/schedules/{schedule_id}/resume", response_model=SchedulePublic)
def resume_schedule(schedule_id: int, session: SessionDep,
                    principal: PrincipalDep) -> SchedulePublic:
    return SchedulePublic.of(set_paused(schedule_id, False, session=session, actor=principal.actor))


@router.delete("/v1/schedules/{schedule_id}", response_model=ScheduleDeleted)
def remove_schedule(schedule_id: int, session: SessionDep,
                    principal: PrincipalDep) -> ScheduleDeleted:
    delete_schedule(schedule_id, session=session, actor=principal.actor)
    return ScheduleDeleted(deleted=schedule_id)
