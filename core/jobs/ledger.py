"""The job ledger: a guarded state machine whose every transition is recorded.

Allowed moves are data (`core.jobs.states.TRANSITIONS`); anything else raises ConflictError,
so a COMPLETED job can never become RUNNING again and two workers cannot both claim one job.

Writers take the caller's session, take the write lock first and commit once; readers never
commit. `add_job` and `apply_transition` are the cores without a commit, for use cases that
write a job together with something else (claiming, reaping, queueing once per model).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlmodel import Session, select

from core.errors import ConflictError, NotFoundError
from core.jobs.states import ACTIVE, JobKind, JobState, Trigger
from core.store import Job, JobTransition, RegisteredModel, Trial, lock_for_write, utcnow
from core.store.audit import record


@contextmanager
def writing(session: Session) -> Iterator[Session]:
    """One writing use case on the caller's session: the write lock first, one commit at the
    end, and a rollback on any error (so a refused move never holds the lock)."""
    lock_for_write(session)
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    session.commit()


def create_job(*, session: Session, model_name: str, target: str, task: str, metric: str,
               kind: JobKind = JobKind.SEARCH, dataset_id: int | None = None,
               settings: Mapping[str, Any] | None = None, state: JobState = JobState.PENDING,
               trigger: Trigger = Trigger.MANUAL, schedule_id: int | None = None,
               actor: str | None = None) -> Job:
    with writing(session):
        return add_job(session, model_name=model_name, target=target, task=task,
                       metric=metric, kind=kind, dataset_id=dataset_id, settings=settings,
                       state=state, trigger=trigger, schedule_id=schedule_id, actor=actor)


def create_job_once(*, session: Session, model_name: str, **fields: Any) -> tuple[Job, bool]:
    """Queue a job for `model_name` unless one is already pending, running or paused:
    returns (that job, False) then, else (the new job, True). The check and the insert are
    one transaction holding the model's row lock (SQLite: the write lock), so two processes
    racing here queue one job between them."""
    with writing(session):
        session.exec(select(RegisteredModel.id).where(RegisteredModel.name == model_name)
                     .with_for_update()).first()
        active = active_job(model_name, session=session)
        if active is not None:
            return active, False
        return add_job(session, model_name=model_name, **fields), True


def active_job(model_name: str, *, session: Session) -> Job | None:
    """The oldest job of the model that has not finished yet, if any."""
    return session.exec(select(Job).where(Job.model_name == model_name,
                                          Job.state.in_(ACTIVE))
                        .order_by(Job.id)).first()


def add_job(session: Session, *, model_name: str, target: str, task: str, metric: str,
            kind: JobKind = JobKind.SEARCH, dataset_id: int | None = None,
            settings: Mapping[str, Any] | None = None, state: JobState = JobState.PENDING,
            trigger: Trigger = Trigger.MANUAL, schedule_id: int | None = None,
            actor: str | None = None) -> Job:
    """Insert a job and its first ledger row in the caller's transaction (no commit). A job
    created RUNNING (a foreground run) is its own worker and heartbeats from the start."""
    state, running = JobState(state), state == JobState.RUNNING
    now = utcnow()
    # plain values in the row (a driver may dump an enum by its name)
    job = Job(kind=JobKind(kind).value, model_name=model_name, target=target, task=str(task),
              metric=metric, dataset_id=dataset_id, settings=dict(settings or {}),
              state=state.value, trigger=Trigger(trigger).value, schedule_id=schedule_id,
              started_at=now if running else None,
              worker_id=f"foreground:{os.getpid()}" if running else None,
              heartbeat_at=now if running else None)
    session.add(job)
    session.flush()
    session.add(JobTransition(job_id=job.id, from_state=None, to_state=state.value,
                              reason="created"))
    record(session, "job.create", f"job:{job.id}", actor=actor, model=model_name,
           kind=job.kind)
    return job


def transition(job_id: int, to_state: JobState, reason: str = "", *, session: Session,
               **fields: Any) -> Job:
    """Move a job to `to_state` if the ledger allows it, in one transaction with its record
    (and `fields` set on the job)."""
    with writing(session):
        job = _locked(session, job_id)
        apply_transition(session, job, to_state, reason)
        for key, value in fields.items():
            setattr(job, key, value)
        session.add(job)
        return job


def update_progress(job_id: int, *, session: Session, **progress: Any) -> None:
    with writing(session):
        job = session.get(Job, job_id, populate_existing=True)
        if job is not None:
            job.progress = {**job.progress, **progress}
            job.heartbeat_at = utcnow()
            session.add(job)


def add_trial(job_id: int, *, session: Session, **fields: Any) -> Trial:
    with writing(session):
        trial = Trial(job_id=job_id, **fields)
        session.add(trial)
        return trial


def request_cancel(job_id: int, *, session: Session, actor: str | None = None) -> Job:
    """A queued job is cancelled at once; a running or paused one stops between trials."""
    with writing(session):
        job = _locked(session, job_id)
        state = JobState(job.state)
        if state.is_terminal:
            raise ConflictError(f"Job {job_id} is already {job.state}.")
        record(session, "job.cancel", f"job:{job_id}", actor=actor)
        if state == JobState.PENDING:
            apply_transition(session, job, JobState.CANCELLED, "cancelled before it started")
        else:
            job.cancel_requested = True
            session.add(job)
        return job


def request_pause(job_id: int, paused: bool, *, session: Session,
                  actor: str | None = None) -> Job:
    """Pause: no new trials are dispatched; resume continues the same search."""
    with writing(session):
        job = _locked(session, job_id)
        state = JobState(job.state)
        if state.is_terminal:
            raise ConflictError(f"Job {job_id} is already {job.state}.")
        if state == JobState.PENDING and paused:
            raise ConflictError(f"Job {job_id} has not started; cancel it instead of pausing.")
        job.pause_requested = paused
        session.add(job)
        record(session, "job.pause" if paused else "job.resume", f"job:{job_id}", actor=actor)
        return job


def _locked(session: Session, job_id: int) -> Job:
    job = session.exec(select(Job).where(Job.id == job_id).with_for_update()
                       .execution_options(populate_existing=True)).first()
    if job is None:
        raise NotFoundError(f"No job {job_id}. List jobs with `workbench jobs`.")
    return job


def apply_transition(session: Session, job: Job, to_state: JobState, reason: str) -> None:
    """Move a job the caller holds locked, with its ledger row (no commit); the one place a
    job's state changes."""
    to_state = JobState(to_state)
    if not JobState(job.state).can_become(to_state):
        raise ConflictError(f"Job {job.id} is {job.state} and cannot become {to_state}.")
    session.add(JobTransition(job_id=job.id, from_state=job.state, to_state=to_state.value,
                              reason=reason))
    job.state = to_state.value
    now = utcnow()
    if to_state == JobState.RUNNING and job.started_at is None:
        job.started_at = now
    if to_state.is_terminal:
        job.finished_at = now
        if to_state == JobState.FAILED:
            job.error = reason
    session.add(job)


def get_job(job_id: int, *, session: Session) -> Job:
    """The job as stored now (re-read even if this session has seen it before)."""
    job = session.get(Job, job_id, populate_existing=True)
    if job is None:
        raise NotFoundError(f"No job {job_id}. List jobs with `workbench jobs`.")
    return job


def list_jobs(*, session: Session, limit: int = 100) -> list[Job]:
    return list(session.exec(select(Job).order_by(Job.id.desc()).limit(limit)
                             .execution_options(populate_existing=True)).all())


def trials_of(job_id: int, *, session: Session) -> list[Trial]:
    return list(session.exec(select(Trial).where(Trial.job_id == job_id)
                             .order_by(Trial.number)).all())


def transitions_of(job_id: int, *, session: Session) -> list[JobTransition]:
    return list(session.exec(select(JobTransition).where(JobTransition.job_id == job_id)
                             .order_by(JobTransition.id)).all())
