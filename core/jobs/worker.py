"""Job workers: separate processes that claim queued jobs and run them.

Claiming is one write transaction (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the database lock
on SQLite), so two workers never run one job. Every worker also reaps jobs whose heartbeat
stopped (the process died; see core.jobs.reaper, which readers and the monitor run too) and
fires due schedules, so any one live worker keeps the whole system moving.

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
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel import or_, select

from core.errors import ConflictError, WorkbenchError
from core.jobs import ledger
from core.jobs.control import Heartbeat, Interrupt, JobControl, JobLog
from core.jobs.reaper import reap_lost_jobs
from core.settings import get_settings
from core.store import Job, ModelVersion, Worker, session_scope, utcnow

if TYPE_CHECKING:
    from core.automl.runner import RunOutcome

log = logging.getLogger("workbench.worker")
IDLE_POLL_S = 1.0
RETRY_BASE_S = 5.0
ORPHAN_GRACE = timedelta(minutes=10)
STARTUP_S = 20.0  # a worker just spawned registers itself within this time
AUTOSTART_IDLE_EXIT_S = 900
SPAWNED_PIDS = "worker.pids"  # an auto-started worker exits when idle; the app restarts one


def claim_next(worker_id: str) -> Job | None:
    """Atomically take the oldest runnable PENDING job and mark it RUNNING for this worker."""
    now = utcnow()
    with session_scope(write=True) as s:
        job = s.exec(
            select(Job).where(Job.state == ledger.PENDING,
                              or_(Job.not_before.is_(None), Job.not_before <= now))
            .order_by(Job.id).limit(1).with_for_update(skip_locked=True)).first()
        if job is None:
            return None
        ledger._move(s, job, ledger.RUNNING, f"claimed by {worker_id}")
        job.worker_id, job.heartbeat_at = worker_id, now
        job.attempts += 1
        s.add(job)
        return job


def sweep_orphan_artifacts() -> list[Path]:
    """Delete model files no version references (a process died between writing the file
    and its row); files younger than ORPHAN_GRACE may still be registering and are kept."""
    settings = get_settings()
    root = settings.artifact_dir / "models"
    if not root.exists():
        return []
    with session_scope() as s:
        known = {p for p in s.exec(select(ModelVersion.artifact_path)).all()}
    cutoff = time.time() - ORPHAN_GRACE.total_seconds()
    removed = []
    for path in root.rglob("*.skops"):
        rel = str(path.relative_to(settings.home))
        if rel not in known and path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            removed.append(path)
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


def run_job(job: Job, worker_id: str, interrupt: Interrupt | None = None) -> None:
    """Execute one claimed job with heartbeat, log capture, cost accounting and retries.
    `interrupt` (set by the worker's SIGTERM handler) stops the job without registering."""
    from core.automl.runner import execute

    handler = JobLog()
    job_logger = logging.getLogger("workbench")
    job_logger.addHandler(handler)
    job_logger.setLevel(logging.INFO)
    control = JobControl(job.id, worker_id, interrupt)
    cpu0 = [time.process_time()]  # CPU not yet accounted for
    _reset_peak_memory()

    def account() -> None:
        now = time.process_time()
        _account(job.id, worker_id, now - cpu0[0], _peak_memory_mb(), handler.text())
        cpu0[0] = now

    def on_stopped(trials: int) -> None:
        """Why the search stopped early decides the record: a signal, a reaper, or a user."""
        signame = control.interrupted()
        if control.lost:
            log.warning("job %d is no longer this worker's (reaped after a missed heartbeat); "
                        "stopping without registering", job.id)
        elif signame:
            log.warning("job %d stopped by %s after %d trial(s): the worker is shutting down; "
                        "the job is CANCELLED and no version is registered", job.id, signame,
                        trials)
            account()  # the log line is in the ledger when the state shows
            _end_if_live(job.id, ledger.CANCELLED,
                         f"stopped by {signame} (worker shutting down) after {trials} trials")
        else:
            ledger.transition(job.id, ledger.CANCELLED,
                              f"cancelled by request after {trials} trials")

    def before_complete(outcome: RunOutcome) -> None:
        """Gate verdict and cost are on the job before anyone can see it COMPLETED."""
        _gate(job.id, outcome)
        log.info("job %d finished", job.id)
        account()

    try:
        with Heartbeat(job.id, worker_id, handler):
            log.info("job %d started on %s (attempt %d)", job.id, worker_id, job.attempts)
            try:
                execute(job.id, should_stop=control.should_stop, pause_gate=control.pause_gate,
                        actor=f"worker:{worker_id}", before_complete=before_complete,
                        on_stopped=on_stopped)
            except WorkbenchError as exc:  # bad input: retrying cannot help
                log.error("job %d failed: %s", job.id, exc.message)
                _fail(job.id, exc.message)
            except Exception as exc:
                log.exception("job %d crashed", job.id)
                _retry_or_fail(job.id, f"{type(exc).__name__}: {exc}")
    finally:
        job_logger.removeHandler(handler)
        account()


def _gate(job_id: int, outcome: RunOutcome) -> None:
    """The promotion gate of a retrain; its failure is logged and never fails (or re-runs)
    a job whose version is already registered."""
    from core.jobs.gate import after_training

    try:
        after_training(job_id, outcome)
    except Exception:
        log.exception("promotion gate of job %d failed", job_id)


def _end_if_live(job_id: int, to_state: str, reason: str) -> None:
    """Move a job this worker still runs; one a reaper took meanwhile keeps its record."""
    try:
        ledger.transition(job_id, to_state, reason)
    except ConflictError as exc:
        log.warning("job %d: %s", job_id, exc.message)


def _fail(job_id: int, reason: str) -> None:
    if ledger.get_job(job_id).state in (ledger.RUNNING, ledger.PAUSED):
        ledger.transition(job_id, ledger.FAILED, reason[:2000])


def _retry_or_fail(job_id: int, reason: str) -> None:
    job = ledger.get_job(job_id)
    if job.state not in (ledger.RUNNING, ledger.PAUSED):
        return
    if job.attempts < job.max_attempts and not job.cancel_requested:
        delay = RETRY_BASE_S * 2 ** (job.attempts - 1)
        ledger.transition(job_id, ledger.PENDING,
                          f"attempt {job.attempts} failed ({reason[:500]}); retry in {delay:.0f}s",
                          not_before=utcnow() + timedelta(seconds=delay))
    else:
        ledger.transition(job_id, ledger.FAILED, reason[:2000])


def _account(job_id: int, worker_id: str, cpu_s: float, peak_mb: float, text: str) -> None:
    """Add the cost; write the log unless the job was reaped and re-claimed by another worker
    (its log is that worker's now)."""
    with session_scope() as s:
        job = s.get(Job, job_id)
        if job is not None:
            job.cpu_seconds += cpu_s
            job.peak_memory_mb = max(job.peak_memory_mb, peak_mb)
            if job.worker_id == worker_id:
                job.log = text
            s.add(job)


class JobWorker:
    """`workbench worker`: claim and run jobs one at a time until stopped."""

    STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self, worker_id: str | None = None) -> None:
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
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
        with session_scope(write=True) as s:
            s.add(Worker(id=self.id, host=socket.gethostname(), pid=os.getpid()))

    def _beat(self, stopped: bool = False) -> None:
        with session_scope() as s:
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

    def _loop(self, max_jobs: int | None, idle_exit_s: float | None) -> int:
        from core.jobs.schedules import fire_due

        # transition: the alert actions moved up to core.usecases (house-deploy); the worker
        # moves there too (house-jobs) and passes its own Database
        from core.store.db import _default
        from core.usecases.alert_actions import CHECK_EVERY_S, monitor_pass

        done, idle_since, checked = 0, time.monotonic(), 0.0
        while not self.stop.is_set():
            self._beat()
            reap_lost_jobs(by=f"worker:{self.id}")
            fire_due()
            if time.monotonic() - checked >= CHECK_EVERY_S:
                checked = time.monotonic()
                monitor_pass(_default())
            job = claim_next(self.id)
            if job is None:
                if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                    break
                self.stop.wait(IDLE_POLL_S)
                continue
            if self.stop.is_set():  # told to stop while claiming: give it back untouched
                ledger.transition(job.id, ledger.PENDING, f"worker {self.id} stopped by "
                                  f"{self.interrupt.name or 'request'} before starting it; "
                                  "re-queued", attempts=job.attempts - 1)
                break
            run_job(job, self.id, self.interrupt)
            done += 1
            idle_since = time.monotonic()
            if max_jobs is not None and done >= max_jobs:
                break
        return done


def live_workers() -> list[Worker]:
    cutoff = utcnow() - timedelta(seconds=get_settings().worker_lost_after_s)
    with session_scope() as s:
        return list(s.exec(select(Worker).where(Worker.stopped_at.is_(None),
                                                Worker.heartbeat_at >= cutoff)).all())


_thread_worker: threading.Thread | None = None


def ensure_local_worker() -> int:
    """The embedded default needs no extra command: start workers (up to
    max_concurrent_jobs) when none is alive. Returns how many were started.

    `WORKBENCH_WORKER_MODE=thread` (hosted demos without process control, e.g. Streamlit
    Community Cloud) runs one worker as a daemon thread of this process instead."""
    global _thread_worker
    settings = get_settings()
    if settings.worker_mode == "thread":
        if _thread_worker is not None and _thread_worker.is_alive():
            return 0
        _thread_worker = threading.Thread(target=JobWorker().run, daemon=True,
                                          name="workbench-worker")
        _thread_worker.start()
        return 1
    missing = settings.max_concurrent_jobs - len(live_workers())
    marker = settings.home / "worker.starting"
    if missing <= 0 or (marker.exists() and time.time() - marker.stat().st_mtime < STARTUP_S):
        return 0  # enough workers, or some are still starting up (not yet registered)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    for _ in range(missing):
        log_path = settings.home / "worker.log"
        with open(log_path, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "app", "worker", "--idle-exit",
                                     str(AUTOSTART_IDLE_EXIT_S)], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=os.environ.copy(),
                                    cwd=Path(__file__).resolve().parents[2])
        with open(settings.home / SPAWNED_PIDS, "a") as pids:  # so they can be stopped
            pids.write(f"{proc.pid}\n")
    return missing


def stop_spawned_workers(home: Path) -> int:
    """SIGTERM the workers this home's app/CLI started: a running job stops at its next check
    and ends CANCELLED ("stopped by SIGTERM"), nothing is registered, and the worker exits."""
    path, stopped = home / SPAWNED_PIDS, 0
    if not path.exists():
        return 0
    for line in path.read_text().split():
        try:
            os.kill(int(line), signal.SIGTERM)
            stopped += 1
        except (ProcessLookupError, ValueError, PermissionError):
            pass
    path.unlink(missing_ok=True)
    return stopped
