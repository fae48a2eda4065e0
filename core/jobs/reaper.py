"""Reaping jobs whose process died: one function every reader and every loop can call.

A RUNNING or PAUSED job carries a heartbeat; when it is older than `worker_lost_after_s` the
process that ran it is gone (kill -9, a crashed machine). Such a job is FAILED with the reason
(or re-queued when `requeue_lost_jobs` is on and it has attempts left). Workers, the monitor
process beside `workbench serve`, and every read of the job list (CLI, REST, pages) reap, so a
dead worker's job never shows RUNNING for long, whether or not another worker is alive.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from core.jobs.control import LOG_LIMIT_CHARS
from core.jobs.ledger import apply_transition, writing
from core.jobs.states import LIVE, JobState
from core.settings import get_settings
from core.store import Database, Job, utcnow
from core.store.audit import record

log = logging.getLogger("workbench.reaper")


def reap_lost_jobs(*, session: Session, by: str = "reaper",
                   now: datetime | None = None) -> list[int]:
    """Fail (or re-queue) every RUNNING/PAUSED job whose heartbeat is older than the setting;
    returns the ids this call moved.

    Cheap when nothing is lost (one read on the indexed `state` column, no write lock), so read
    paths can call it. Idempotent and race-safe: the move happens under a row lock (`FOR UPDATE
    SKIP LOCKED` on PostgreSQL, the database write lock on SQLite) and re-checks the state and
    heartbeat, so of two reapers racing on one job exactly one records the transition."""
    settings = get_settings()
    limit = settings.worker_lost_after_s
    now = now or utcnow()
    cutoff = now - timedelta(seconds=limit)
    stale = (Job.state.in_(LIVE), Job.heartbeat_at < cutoff)
    candidates = list(session.exec(select(Job.id).where(*stale)).all())
    if not candidates:
        return []
    reaped: list[tuple[int, str]] = []
    with writing(session) as s:
        lost = s.exec(select(Job).where(Job.id.in_(candidates), *stale)
                      .with_for_update(skip_locked=True)
                      .execution_options(populate_existing=True)).all()
        for job in lost:
            requeue = settings.requeue_lost_jobs and job.attempts < job.max_attempts
            beat = job.heartbeat_at
            age = (now - (beat if beat.tzinfo else beat.replace(tzinfo=UTC))).total_seconds()
            reason = (f"worker lost: {job.worker_id or 'its worker'} sent no heartbeat for "
                      f"{age:.0f}s (limit WORKBENCH_WORKER_LOST_AFTER_S={limit:g}s); "
                      + ("re-queued" if requeue else "failed"))
            apply_transition(s, job, JobState.PENDING if requeue else JobState.FAILED, reason)
            job.log = "\n".join(filter(None, [job.log, f"{now:%H:%M:%S} ERROR {reason} "
                                              f"(reaped by {by})"]))[-LOG_LIMIT_CHARS:]
            s.add(job)
            record(s, "job.worker_lost", f"job:{job.id}", actor="reaper", by=by,
                   worker=job.worker_id, requeued=requeue)
            reaped.append((job.id, reason))
    for job_id, reason in reaped:
        log.warning("job %d: %s (reaped by %s)", job_id, reason, by)
    return [job_id for job_id, _ in reaped]


def reap_every_s() -> float:
    """How often a loop reaps: a few times per timeout, so a lost job shows within ~1.3×."""
    return max(0.2, min(5.0, get_settings().worker_lost_after_s / 3))


def run_reaper(db: Database, stop: threading.Event, by: str = "monitor") -> None:
    """Reap until `stop` is set (the monitor process beside `workbench serve` runs this in a
    thread of its own, so a long monitor pass never delays it)."""
    while not stop.is_set():
        try:
            with db.session() as s:
                reap_lost_jobs(session=s, by=by)
        except Exception:  # a database hiccup must not end reaping
            log.exception("reaping lost jobs failed")
        stop.wait(reap_every_s())
