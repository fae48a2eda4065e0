"""What a job worker does: train the jobs it claims (promotion gate included) and, between
jobs, reap lost jobs, fire due schedules and check alerts, so any one live worker keeps the
whole system moving. `job_worker(db)` builds one; the ledger mechanics (claiming,
heartbeats, retries, signals) are `core.jobs.worker`'s."""

from __future__ import annotations

import logging

from core.jobs.reaper import reap_lost_jobs
from core.jobs.worker import Chore, JobRun, JobWorker, new_worker_id
from core.store import Database
from core.tracking.job_runs import close_runs_of_ended_jobs
from core.usecases import alert_actions, promotion_gate, retraining, training

log = logging.getLogger("workbench.worker")


def train_claimed(run: JobRun) -> None:
    """A claimed job's work: the search, the gate of a retrain, registration. Gate verdict
    and cost are on the job before anyone can see it COMPLETED."""
    job_id = run.job.id

    def before_complete(outcome: training.RunOutcome) -> None:
        _gate(run.db, job_id, outcome)
        log.info("job %d finished", job_id)
        run.account()

    training.execute(run.db, job_id, should_stop=run.control.should_stop,
                     pause_gate=run.control.pause_gate, actor=f"worker:{run.worker_id}",
                     before_complete=before_complete, on_stopped=run.on_stopped)


def _gate(db: Database, job_id: int, outcome: training.RunOutcome) -> None:
    """The promotion gate of a retrain; its failure is logged and never fails (or re-runs)
    a job whose version is already registered."""
    try:
        promotion_gate.after_training(db, job_id, outcome)
    except Exception:
        log.exception("promotion gate of job %d failed", job_id)


def chores(db: Database, worker_id: str) -> list[Chore]:
    """Reaping and schedules on every turn of the loop; alert checks every CHECK_EVERY_S."""

    def reap() -> None:
        with db.session() as s:
            reap_lost_jobs(session=s, by=f"worker:{worker_id}")
            close_runs_of_ended_jobs(session=s)  # the runs of reaped jobs end too

    return [Chore("reap lost jobs", reap),
            Chore("fire due schedules", lambda: retraining.fire_due(db)),
            Chore("check alerts", lambda: alert_actions.monitor_pass(db),
                  every_s=alert_actions.CHECK_EVERY_S)]


def job_worker(db: Database, worker_id: str | None = None) -> JobWorker:
    """A worker that trains claimed jobs and does the chores."""
    worker_id = worker_id or new_worker_id()
    return JobWorker(db, train_claimed, chores=chores(db, worker_id), worker_id=worker_id)
