"""The job ledger: a guarded state machine whose every transition is recorded.

Allowed moves are declared in TRANSITIONS; anything else raises ConflictError, so a COMPLETED
job can never become RUNNING again and two workers cannot both claim one job.
"""

from __future__ import annotations

import os
from typing import Any

from sqlmodel import select

from core.errors import ConflictError, NotFoundError
from core.store import Job, JobTransition, RegisteredModel, Trial, session_scope, utcnow
from core.store.audit import record

PENDING, RUNNING, PAUSED = "PENDING", "RUNNING", "PAUSED"
COMPLETED, FAILED, CANCELLED = "COMPLETED", "FAILED", "CANCELLED"
FINISHED = frozenset({COMPLETED, FAILED, CANCELLED})
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({RUNNING, CANCELLED}),
    RUNNING: frozenset({COMPLETED, FAILED, CANCELLED, PAUSED, PENDING}),
    PAUSED: frozenset({RUNNING, PENDING, CANCELLED}),
    COMPLETED: frozenset(), FAILED: frozenset(), CANCELLED: frozenset(),
}


def create_job(*, model_name: str, target: str, task: str, metric: str, kind: str = "search",
               dataset_id: int | None = None, settings: dict[str, Any] | None = None,
               state: str = PENDING, trigger: str = "manual", schedule_id: int | None = None,
               actor: str | None = None) -> Job:
    with session_scope(write=True) as s:
        return _add_job(s, model_name=model_name, target=target, task=task, metric=metric,
                        kind=kind, dataset_id=dataset_id, settings=settings, state=state,
                        trigger=trigger, schedule_id=schedule_id, actor=actor)


def create_job_once(*, model_name: str, **fields: Any) -> tuple[Job, bool]:
    """Queue a job for `model_name` unless one is already pending, running or paused:
    returns (that job, False) then, else (the new job, True). The check and the insert are
    one transaction holding the model's row lock (SQLite: the write lock), so two processes
    racing here queue one job between them."""
    with session_scope(write=True) as s:
        s.exec(select(RegisteredModel.id).where(RegisteredModel.name == model_name)
               .with_for_update()).first()
        active = active_job(s, model_name)
        if active is not None:
            return active, False
        return _add_job(s, model_name=model_name, **fields), True


def active_job(s: Any, model_name: str) -> Job | None:
    """The oldest job of the model that has not finished yet, if any."""
    return s.exec(select(Job).where(Job.model_name == model_name,
                                    Job.state.in_((PENDING, RUNNING, PAUSED)))
                  .order_by(Job.id)).first()


def _add_job(s: Any, *, model_name: str, target: str, task: str, metric: str,
             kind: str = "search", dataset_id: int | None = None,
             settings: dict[str, Any] | None = None, state: str = PENDING,
             trigger: str = "manual", schedule_id: int | None = None,
             actor: str | None = None) -> Job:
    job = Job(kind=kind, model_name=model_name, target=target, task=task, metric=metric,
              dataset_id=dataset_id, settings=settings or {}, state=state,
              trigger=trigger, schedule_id=schedule_id,
              started_at=utcnow() if state == RUNNING else None,
              worker_id=f"foreground:{os.getpid()}" if state == RUNNING else None,
              heartbeat_at=utcnow() if state == RUNNING else None)
    s.add(job)
    s.flush()
    s.add(JobTransition(job_id=job.id, from_state=None, to_state=state, reason="created"))
    record(s, "job.create", f"job:{job.id}", actor=actor, model=model_name, kind=kind)
    return job


def transition(job_id: int, to_state: str, reason: str = "", **fields: Any) -> Job:
    """Move a job to `to_state` if the ledger allows it, in one transaction with its record."""
    with session_scope(write=True) as s:
        job = _locked(s, job_id)
        _move(s, job, to_state, reason)
        for key, value in fields.items():
            setattr(job, key, value)
        s.add(job)
        return job


def update_progress(job_id: int, **progress: Any) -> None:
    with session_scope(write=True) as s:
        job = s.get(Job, job_id)
        if job is not None:
            job.progress = {**job.progress, **progress}
            job.heartbeat_at = utcnow()
            s.add(job)


def add_trial(job_id: int, **fields: Any) -> Trial:
    with session_scope(write=True) as s:
        trial = Trial(job_id=job_id, **fields)
        s.add(trial)
        return trial


def request_cancel(job_id: int, actor: str | None = None) -> Job:
    """A queued job is cancelled at once; a running or paused one stops between trials."""
    with session_scope(write=True) as s:
        job = _locked(s, job_id)
        if job.state in FINISHED:
            raise ConflictError(f"Job {job_id} is already {job.state}.")
        record(s, "job.cancel", f"job:{job_id}", actor=actor)
        if job.state == PENDING:
            _move(s, job, CANCELLED, "cancelled before it started")
        else:
            job.cancel_requested = True
            s.add(job)
        return job


def request_pause(job_id: int, paused: bool, actor: str | None = None) -> Job:
    """Pause: no new trials are dispatched; resume continues the same search."""
    with session_scope(write=True) as s:
        job = _locked(s, job_id)
        if job.state in FINISHED:
            raise ConflictError(f"Job {job_id} is already {job.state}.")
        if job.state == PENDING and paused:
            raise ConflictError(f"Job {job_id} has not started; cancel it instead of pausing.")
        job.pause_requested = paused
        s.add(job)
        record(s, "job.pause" if paused else "job.resume", f"job:{job_id}", actor=actor)
        return job


def _locked(s: Any, job_id: int) -> Job:
    job = s.exec(select(Job).where(Job.id == job_id).with_for_update()).first()
    if job is None:
        raise NotFoundError(f"No job {job_id}. List jobs with `workbench jobs`.")
    return job


def _move(s: Any, job: Job, to_state: str, reason: str) -> None:
    if to_state not in TRANSITIONS[job.state]:
        raise ConflictError(f"Job {job.id} is {job.state} and cannot become {to_state}.")
    s.add(JobTransition(job_id=job.id, from_state=job.state, to_state=to_state, reason=reason))
    job.state = to_state
    now = utcnow()
    if to_state == RUNNING and job.started_at is None:
        job.started_at = now
    if to_state in FINISHED:
        job.finished_at = now
        if to_state == FAILED:
            job.error = reason
    s.add(job)


def get_job(job_id: int) -> Job:
    with session_scope() as s:
        job = s.get(Job, job_id)
    if job is None:
        raise NotFoundError(f"No job {job_id}. List jobs with `workbench jobs`.")
    return job


def list_jobs(limit: int = 100) -> list[Job]:
    with session_scope() as s:
        return list(s.exec(select(Job).order_by(Job.id.desc()).limit(limit)).all())


def trials_of(job_id: int) -> list[Trial]:
    with session_scope() as s:
        return list(s.exec(select(Trial).where(Trial.job_id == job_id)
                           .order_by(Trial.number)).all())


def transitions_of(job_id: int) -> list[JobTransition]:
    with session_scope() as s:
        return list(s.exec(select(JobTransition).where(JobTransition.job_id == job_id)
                           .order_by(JobTransition.id)).all())
