"""What a running job needs from the ledger: heartbeats, cancel and pause signals, its log."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

from core.jobs import ledger
from core.jobs.states import JobState
from core.settings import get_settings
from core.store import Database, Job, Worker, utcnow

LOG_LIMIT_CHARS = 64_000  # the ledger keeps the tail of a job's log
POLL_S = 0.5


class JobLog(logging.Handler):
    """Collects the job's log lines (bounded) for the heartbeat to write to the ledger."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: deque[str] = deque()
        self.size = 0
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s",
                                            "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        self.lines.append(line)
        self.size += len(line) + 1
        while self.size > LOG_LIMIT_CHARS and len(self.lines) > 1:
            self.size -= len(self.lines.popleft()) + 1

    def text(self) -> str:
        return "\n".join(self.lines)


class Heartbeat:
    """A daemon thread that stamps the job (and its worker) as alive every few seconds and
    writes the log tail, so a dead process is noticed by the reaper."""

    def __init__(self, db: Database, job_id: int, worker_id: str | None = None,
                 log: JobLog | None = None) -> None:
        self.db, self.job_id, self.worker_id, self.log = db, job_id, worker_id, log
        self.interval = get_settings().heartbeat_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"heartbeat-{job_id}")

    def beat(self) -> None:
        now = utcnow()
        with self.db.session() as s:
            job = s.get(Job, self.job_id)
            # a job reaped from a stalled worker may belong to another worker by now
            if job is not None and (self.worker_id is None or job.worker_id == self.worker_id):
                job.heartbeat_at = now
                if self.log is not None:
                    job.log = self.log.text()
                s.add(job)
            if self.worker_id:
                worker = s.get(Worker, self.worker_id)
                if worker is not None:
                    worker.heartbeat_at = now
                    s.add(worker)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.beat()
            except Exception:  # a busy database must not kill the heartbeat
                logging.getLogger(__name__).warning("heartbeat failed", exc_info=True)

    def __enter__(self) -> Heartbeat:
        self.beat()
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        try:
            self.beat()
        except Exception:
            pass


class Interrupt:
    """A stop signal (SIGTERM, SIGINT) the worker process received: its running job stops at
    the search's next check and is never registered. Set from a signal handler, so it only
    sets a flag and an event."""

    def __init__(self) -> None:
        self.name: str | None = None
        self._event = threading.Event()

    def set(self, name: str) -> None:
        if self.name is None:
            self.name = name
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        return self._event.wait(timeout)


class JobControl:
    """Cancel and pause signals read from the ledger, polled at most every POLL_S; a signal
    to the worker (`interrupt`) stops at once. With `worker_id`, a job that is no longer this
    worker's (reaped after a stalled heartbeat, maybe re-claimed) stops too: `lost`."""

    def __init__(self, db: Database, job_id: int, worker_id: str | None = None,
                 interrupt: Interrupt | None = None) -> None:
        self.db, self.job_id = db, job_id
        self.worker_id, self.interrupt = worker_id, interrupt
        self._checked = 0.0
        self._cancel = False
        self.lost = False

    def _read(self) -> Job:
        with self.db.session() as s:
            job = ledger.get_job(self.job_id, session=s)
        self._cancel = job.cancel_requested
        self.lost = self.worker_id is not None and (
            not JobState(job.state).is_live or job.worker_id != self.worker_id)
        return job

    def _move(self, to_state: JobState, reason: str) -> None:
        with self.db.session() as s:
            ledger.transition(self.job_id, to_state, reason, session=s)

    def interrupted(self) -> str | None:
        """The signal's name when the worker was told to stop."""
        return self.interrupt.name if self.interrupt is not None and self.interrupt.is_set() \
            else None

    def should_stop(self) -> bool:
        if self.interrupted() or self._cancel or self.lost:
            return True
        now = time.monotonic()
        if now - self._checked >= POLL_S:
            self._checked = now
            self._read()
        return self._cancel or self.lost

    def pause_gate(self, before_pause: Callable[[], None] | None = None) -> float:
        """Block while a pause is requested (the job shows PAUSED); return the seconds
        waited so the search can extend its deadline by them. `before_pause` runs first
        (a search on a Dask cluster stops its running trials there)."""
        job = self._read()
        if not job.pause_requested or self.should_stop():
            return 0.0
        started = time.monotonic()
        if before_pause is not None:
            before_pause()
        self._move(JobState.PAUSED, "paused by request")
        while True:
            self.interrupt.wait(POLL_S) if self.interrupt is not None else time.sleep(POLL_S)
            job = self._read()
            if self.lost:  # reaped while paused: nothing of ours to move
                return time.monotonic() - started
            if self.interrupted() or job.cancel_requested or not job.pause_requested:
                break
        reason = (f"stopped by {self.interrupted()} while paused" if self.interrupted()
                  else "cancelled while paused" if job.cancel_requested else "resumed")
        self._move(JobState.RUNNING, reason)
        return time.monotonic() - started
