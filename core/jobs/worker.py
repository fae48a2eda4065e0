"""Job workers: separate processes that claim queued jobs and run them.

Claiming is one write transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the database lock
on SQLite), so two workers never run one job. Between jobs a worker does its chores: what
work a job is and which chores there are (reaping jobs whose heartbeat stopped, firing due
schedules, alert checks) are given by `core.usecases.worker`, which builds the worker.

SIGTERM (or SIGINT) to a worker stops its running job at the search's next check: the job
ends CANCELLED with "stopped by SIGTERM" in its log and no version is registered; the
worker then exits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import resource
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlmodel import Session, or_, select

from core.errors import ConflictError, WorkbenchError
from core.jobs import ledger
from core.jobs.control import Heartbeat, Interrupt, JobControl, JobLog
from core.jobs.ledger import writing
from core.jobs.states import JobState
from core.settings import get_settings
from core.store import Database, Job, ModelVersion, Worker, utcnow
from core.store import artifacts as artifact_store

log = logging.getLogger("workbench.worker")
IDLE_POLL_S = 1.0
RETRY_BASE_S = 5.0
ORPHAN_GRACE = timedelta(minutes=10)


def claim_next(worker_id: str, *, session: Session) -> Job | None:
    """Atomically take the oldest runnable PENDING job and mark it RUNNING for this worker."""
    now = utcnow()
    with writing(session):
        job = session.exec(
            select(Job).where(Job.state == JobState.PENDING.value,
                              or_(Job.not_before.is_(None), Job.not_before <= now))
            .order_by(Job.id).limit(1).with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)).first()
        if job is None:
            return None
        ledger.apply_transition(session, job, JobState.RUNNING, f"claimed by {worker_id}")
        job.worker_id, job.heartbeat_at = worker_id, now
        job.attempts += 1
        session.add(job)
        return job


def sweep_orphan_artifacts(*, session: Session) -> list[str]:
    """Delete model files no version references (a process died between writing the file
    and its row, or a rotation between writing the new file and moving the row to it);
    files younger than ORPHAN_GRACE may still be registering and are kept. Returns the
    paths removed (relative to WORKBENCH_HOME, as rows name them)."""
    known = set(session.exec(select(ModelVersion.artifact_path)).all())
    cutoff = time.time() - ORPHAN_GRACE.total_seconds()
    removed = []
    for entry in artifact_store.entries("models/"):
        rel = artifact_store.relpath_of(entry.key)
        if entry.key.endswith(".skops") and rel not in known and entry.mtime < cutoff:
            artifact_store.delete(rel)
            removed.append(rel)
    return removed


def _reset_peak_memory() -> None:
    try:  # Linux: writing 5 resets VmHWM, so each job's peak is its own
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_memory_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class JobRun:
    """One claimed job in a worker's hands: its cancel/pause controls, the log it captures,
    its cost, and how it ends when stopped early. What a `JobExecutor` is given."""

    def __init__(self, db: Database, job: Job, worker_id: str,
                 interrupt: Interrupt | None = None) -> None:
        self.db, self.job, self.worker_id = db, job, worker_id
        self.log = JobLog()
        self.control = JobControl(db, job.id, worker_id, interrupt)
        self._cpu0 = time.process_time()  # CPU not yet accounted for

    def account(self) -> None:
        """Add the CPU used since the last call and the peak memory to the job; write the
        log unless the job was reaped and re-claimed by another worker (its log is that
        worker's now)."""
        now = time.process_time()
        cpu_s, self._cpu0 = now - self._cpu0, now
        with self.db.session() as s:
            job = s.get(Job, self.job.id, populate_existing=True)
            if job is not None:
                job.cpu_seconds += cpu_s
                job.peak_memory_mb = max(job.peak_memory_mb, _peak_memory_mb())
                if job.worker_id == self.worker_id:
                    job.log = self.log.text()
                s.add(job)

    def on_stopped(self, trials: int) -> None:
        """Why the search stopped early decides the record: a signal, a reaper, or a user."""
        job_id, signame = self.job.id, self.control.interrupted()
        if self.control.lost:
            log.warning("job %d is no longer this worker's (reaped after a missed heartbeat); "
                        "stopping without registering", job_id)
        elif signame:
            log.warning("job %d stopped by %s after %d trial(s): the worker is shutting down; "
                        "the job is CANCELLED and no version is registered", job_id, signame,
                        trials)
            self.account()  # the log line is in the ledger when the state shows
            self._end_if_live(JobState.CANCELLED, f"stopped by {signame} (worker shutting "
                                                  f"down) after {trials} trials")
        else:
            self._move(JobState.CANCELLED, f"cancelled by request after {trials} trials")

    def _move(self, to_state: JobState, reason: str, **fields: object) -> None:
        with self.db.session() as s:
            ledger.transition(self.job.id, to_state, reason, session=s, **fields)

    def _end_if_live(self, to_state: JobState, reason: str) -> None:
        """Move a job this worker still runs; one a reaper took meanwhile keeps its record."""
        try:
            self._move(to_state, reason)
        except ConflictError as exc:
            log.warning("job %d: %s", self.job.id, exc.message)


JobExecutor = Callable[[JobRun], None]
"""Does a claimed job's work to its end (COMPLETED, or stopped through `run.on_stopped`);
raises to fail it: a `WorkbenchError` fails it for good, anything else is retried."""


def run_job(db: Database, job: Job, worker_id: str, execute: JobExecutor,
            interrupt: Interrupt | None = None) -> None:
    """Execute one claimed job with heartbeat, log capture, cost accounting and retries.
    `interrupt` (set by the worker's SIGTERM handler) stops the job without registering."""
    run = JobRun(db, job, worker_id, interrupt)
    job_logger = logging.getLogger("workbench")
    job_logger.addHandler(run.log)
    job_logger.setLevel(logging.INFO)
    _reset_peak_memory()
    try:
        with Heartbeat(db, job.id, worker_id, run.log):
            log.info("job %d started on %s (attempt %d)", job.id, worker_id, job.attempts)
            try:
                execute(run)
            except WorkbenchError as exc:  # bad input: retrying cannot help
                log.error("job %d failed: %s", job.id, exc.message)
                with db.session() as s:
                    fail(job.id, exc.message, session=s)
            except Exception as exc:
                log.exception("job %d crashed", job.id)
                with db.session() as s:
                    retry_or_fail(job.id, f"{type(exc).__name__}: {exc}", session=s)
    finally:
        job_logger.removeHandler(run.log)
        run.account()


def fail(job_id: int, reason: str, *, session: Session) -> None:
    """FAILED with `reason`, unless the job is no longer live (reaped, cancelled)."""
    if JobState(ledger.get_job(job_id, session=session).state).is_live:
        ledger.transition(job_id, JobState.FAILED, reason[:2000], session=session)


def retry_or_fail(job_id: int, reason: str, *, session: Session) -> None:
    """Back to PENDING after a growing delay while attempts remain, else FAILED."""
    job = ledger.get_job(job_id, session=session)
    if not JobState(job.state).is_live:
        return
    if job.attempts < job.max_attempts and not job.cancel_requested:
        delay = RETRY_BASE_S * 2 ** (job.attempts - 1)
        ledger.transition(job_id, JobState.PENDING,
                          f"attempt {job.attempts} failed ({reason[:500]}); retry in {delay:.0f}s",
                          session=session, not_before=utcnow() + timedelta(seconds=delay))
    else:
        ledger.transition(job_id, JobState.FAILED, reason[:2000], session=session)


@dataclass
class Chore:
    """Work a worker does between jobs (reaping, firing schedules, alert checks), every
    `every_s` seconds (0: on every turn of the loop)."""

    name: str
    run: Callable[[], object]
    every_s: float = 0.0
    last: float = float("-inf")

    def maybe(self) -> None:
        if time.monotonic() - self.last >= self.every_s:
            self.last = time.monotonic()
            self.run()


def new_worker_id() -> str:
    """host:pid:random, unique across machines and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class JobWorker:
    """`workbench worker`: claim and run jobs one at a time until stopped; between jobs, do
    the chores (so any one live worker keeps the whole system moving)."""

    STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, db: Database, execute: JobExecutor, *, chores: Sequence[Chore] = (),
                 worker_id: str | None = None) -> None:
        self.db, self.execute, self.chores = db, execute, list(chores)
        self.id = worker_id or new_worker_id()
        self.stop = threading.Event()
        self.interrupt = Interrupt()

    def terminate(self, signame: str = "SIGTERM") -> None:
        """Stop the running job (CANCELLED, nothing registered) and then the loop; safe to
        call from a signal handler."""
        self.interrupt.set(signame)
        self.stop.set()

    @contextlib.contextmanager
    def _signals_stop_jobs(self) -> Iterator[None]:
        """In the main thread (`workbench worker`), SIGTERM/SIGINT call `terminate`; the
        previous handlers come back afterwards. Elsewhere (a worker thread) nothing changes."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.getsignal(sig) for sig in self.STOP_SIGNALS}
        for sig in self.STOP_SIGNALS:
            signal.signal(sig, lambda signum, _frame: self.terminate(signal.Signals(signum).name))
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _register(self) -> None:
        with self.db.session(write=True) as s:
            s.add(Worker(id=self.id, host=socket.gethostname(), pid=os.getpid()))

    def _beat(self, stopped: bool = False) -> None:
        with self.db.session() as s:
            worker = s.get(Worker, self.id)
            if worker is not None:
                worker.heartbeat_at = utcnow()
                if stopped:
                    worker.stopped_at = utcnow()
                s.add(worker)

    def run(self, *, max_jobs: int | None = None, idle_exit_s: float | None = None) -> int:
        """Loop until `stop` is set, `max_jobs` ran, or idle for `idle_exit_s`."""
        self._register()
        try:
            with self._signals_stop_jobs():
                return self._loop(max_jobs, idle_exit_s)
        finally:
            self._beat(stopped=True)

    def _claim(self) -> Job | None:
        with self.db.session() as s:
            return claim_next(self.id, session=s)

    def _loop(self, max_jobs: int | None, idle_exit_s: float | None) -> int:
        done, idle_since = 0, time.monotonic()
        while not self.stop.is_set():
            self._beat()
            for chore in self.chores:
                chore.maybe()
            job = self._claim()
            if job is None:
                if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                    break
                self.stop.wait(IDLE_POLL_S)
                continue
            if self.stop.is_set():  # told to stop while claiming: give it back untouched
                with self.db.session() as s:
                    ledger.transition(job.id, JobState.PENDING, f"worker {self.id} stopped by "
                                      f"{self.interrupt.name or 'request'} before starting "
                                      "it; re-queued", session=s, attempts=job.attempts - 1)
                break
            # claimed unscoped (any workspace's job), run in the job's workspace: whatever it
            # writes (trials, runs, the version) lands there and nowhere else
            run_job(self.db.in_workspace(job.workspace), job, self.id, self.execute,
                    self.interrupt)
            done += 1
            idle_since = time.monotonic()
            if max_jobs is not None and done >= max_jobs:
                break
        return done


def live_workers(*, session: Session) -> list[Worker]:
    """Workers that heartbeated recently and have not said they stopped."""
    cutoff = utcnow() - timedelta(seconds=get_settings().worker_lost_after_s)
    return list(session.exec(select(Worker).where(Worker.stopped_at.is_(None),
                                                  Worker.heartbeat_at >= cutoff)).all())
