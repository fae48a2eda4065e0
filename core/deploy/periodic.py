"""A piece of background work repeated every few seconds on a daemon thread of its own.

The serving runtime's loops (telemetry flusher and guard rails, state refresher) are threads,
not event-loop tasks: their work is blocking database I/O, and they must keep time while the
event loop is busy scoring a batch (small batches are scored on the loop itself)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("workbench.serving")


class Periodic:
    def __init__(self, name: str, every_s: float, work: Callable[[], object]) -> None:
        self.name = name
        self.every_s = every_s
        self.work = work
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.work()
            except Exception:  # the loop must survive a database hiccup
                log.exception("%s failed", self.name)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
        self._thread = None
