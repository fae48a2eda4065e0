"""What a running job needs from the ledger: heartbeats, cancel and pause signals, its log."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from types import TracebackType

from core.jobs import ledger
from core.settings import get_settings
from core.store import Job, Worker, session_scope, utcnow

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

    def __init__(self, job_id: int, worker_id: str | None = None,
                 log: JobLog | None = None) -> None:
        self.job_id, self.worker_id, self.log = job_id, worker_id, log
        self.interval = get_settings().heartbeat_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"heartbeat-{job_id}")

    def beat(self) -> None:
        now = utcnow()
        with session_scope() as s:
            job = s.get(Job, self.job_id)
            if job is not None:
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


class JobControl:
    """Cancel and pause signals read from the ledger, polled at most every POLL_S."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self._checked = 0.0
        self._cancel = False

    def should_stop(self) -> bool:
        if self._cancel:
            return True
        now = time.monotonic()
        if now - self._checked >= POLL_S:
            self._checked = now
            self._cancel = ledger.get_job(self.job_id).cancel_requested
        return self._cancel

    def pause_gate(self) -> float:
        """Block while a pause is requested (the job shows PAUSED); return the seconds
        waited so the search can extend its deadline by them."""
        job = ledger.get_job(self.job_id)
        if not job.pause_requested or job.cancel_requested:
            return 0.0
        started = time.monotonic()
        ledger.transition(self.job_id, ledger.PAUSED, "paused by request")
        while True:
            time.sleep(POLL_S)
            job = ledger.get_job(self.job_id)
            if job.cancel_requested or not job.pause_requested:
                break
        ledger.transition(self.job_id, ledger.RUNNING,
                          "cancelled while paused" if job.cancel_requested else "resumed")
        self._cancel = job.cancel_requested
        return time.monotonic() - started
