"""What readers see of jobs (CLI, REST, pages), as `JobPublic` records.

Reading the job list reaps lost jobs first, so a job whose worker died shows FAILED (or
re-queued) once its heartbeat is older than the timeout, even when no worker is alive.
"""

from __future__ import annotations

from sqlmodel import Session

from core.jobs import ledger
from core.jobs.public import JobDetailPublic, JobPublic, TransitionPublic, TrialPublic
from core.jobs.reaper import reap_lost_jobs


def read_jobs(*, session: Session, limit: int = 100, by: str = "reader") -> list[JobPublic]:
    """The newest jobs, lost ones reaped first (cheap when none is lost)."""
    reap_lost_jobs(session=session, by=by)
    return [JobPublic.of(j) for j in ledger.list_jobs(session=session, limit=limit)]


def read_job(job_id: int, *, session: Session, by: str = "reader") -> JobPublic:
    """One job, lost ones reaped first."""
    reap_lost_jobs(session=session, by=by)
    return JobPublic.of(ledger.get_job(job_id, session=session))


def read_job_detail(job_id: int, *, session: Session, by: str = "reader") -> JobDetailPublic:
    """One job with its state changes, lost ones reaped first."""
    job = read_job(job_id, session=session, by=by)
    moves = ledger.transitions_of(job_id, session=session)
    return JobDetailPublic(**dict(job), transitions=[TransitionPublic.of(t) for t in moves])


def read_trials(job_id: int, *, session: Session) -> list[TrialPublic]:
    """A job's trials in the order they ran."""
    return [TrialPublic.of(t) for t in ledger.trials_of(job_id, session=session)]
