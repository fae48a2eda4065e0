"""REST endpoints for training jobs, retraining and schedules.

Every handler is a thin call into core.jobs / core.automl.runner; errors are WorkbenchErrors
that the app turns into `{"error", "detail"}` JSON with a 4xx status.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import SessionDep
from app.api.schemas import JobRequest, ScheduleRequest
from core.automl.runner import submit
from core.data.datasets import get_dataset
from core.jobs import ledger
from core.jobs.reaper import reap_lost_jobs
from core.jobs.schedules import (
    create_schedule,
    delete_schedule,
    list_schedules,
    retrain,
    set_paused,
)
from core.jobs.views import job_doc, read_job, read_jobs, schedule_doc
from core.jobs.worker import ensure_local_worker

router = APIRouter()


@router.post("/v1/jobs", tags=["jobs"], status_code=201)
def create_job(body: JobRequest, session: SessionDep) -> dict[str, Any]:
    ds = get_dataset(body.dataset, session=session)
    job = submit(ds, body.target, name=body.name,
                 task=None if body.task == "auto" else body.task, metric=body.metric,
                 budget=body.budget, seed=body.seed, time_column=body.time_column,
                 estimators=body.estimators, sampler=body.search, ensemble=body.ensemble,
                 trigger="api", actor="api")
    ensure_local_worker()
    return job_doc(job)


@router.get("/v1/jobs", tags=["jobs"])
def jobs(limit: int = 100) -> list[dict[str, Any]]:
    return [job_doc(j) for j in read_jobs(limit=max(1, min(limit, 1000)), by="api")]


@router.get("/v1/jobs/{job_id}", tags=["jobs"])
def job(job_id: int) -> dict[str, Any]:
    doc = job_doc(read_job(job_id, by="api"))
    doc["transitions"] = [{"from": t.from_state, "to": t.to_state, "reason": t.reason,
                           "at": t.at.isoformat()} for t in ledger.transitions_of(job_id)]
    return doc


@router.post("/v1/jobs/{job_id}/cancel", tags=["jobs"])
def cancel(job_id: int) -> dict[str, Any]:
    reap_lost_jobs(by="api")
    return job_doc(ledger.request_cancel(job_id, actor="api"))


@router.post("/v1/jobs/{job_id}/pause", tags=["jobs"])
def pause(job_id: int) -> dict[str, Any]:
    reap_lost_jobs(by="api")
    return job_doc(ledger.request_pause(job_id, True, actor="api"))


@router.post("/v1/jobs/{job_id}/resume", tags=["jobs"])
def resume(job_id: int) -> dict[str, Any]:
    reap_lost_jobs(by="api")
    return job_doc(ledger.request_pause(job_id, False, actor="api"))


@router.post("/v1/models/{name}/retrain", tags=["jobs"], status_code=201)
def retrain_model(name: str) -> dict[str, Any]:
    job = retrain(name, trigger="api", actor="api")
    ensure_local_worker()
    return job_doc(job)


@router.get("/v1/schedules", tags=["jobs"])
def schedules() -> list[dict[str, Any]]:
    return [schedule_doc(s) for s in list_schedules()]


@router.post("/v1/schedules", tags=["jobs"], status_code=201)
def add_schedule(body: ScheduleRequest) -> dict[str, Any]:
    return schedule_doc(create_schedule(
        body.model, body.when, settings={"budget": body.budget} if body.budget else {},
        auto_canary=body.auto_canary, gate_min_abs=body.min_gain,
        gate_min_rel=body.min_gain_rel, actor="api"))


@router.post("/v1/schedules/{schedule_id}/pause", tags=["jobs"])
def pause_schedule(schedule_id: int) -> dict[str, Any]:
    return schedule_doc(set_paused(schedule_id, True, actor="api"))


@router.post("/v1/schedules/{schedule_id}/resume", tags=["jobs"])
def resume_schedule(schedule_id: int) -> dict[str, Any]:
    return schedule_doc(set_paused(schedule_id, False, actor="api"))


@router.delete("/v1/schedules/{schedule_id}", tags=["jobs"])
def remove_schedule(schedule_id: int) -> dict[str, Any]:
    delete_schedule(schedule_id, actor="api")
    return {"deleted": schedule_id}
