"""Shadow scoring: a copy of a request scored by the shadow candidate on a thread of its own,
after the caller has its answer. Its outcome counts in the candidate's telemetry, and its
predictions are written beside the request's in the prediction log (the scorecard compares
them once labels arrive)."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all

from core.deploy.batcher import score
from core.deploy.cache import ModelCache
from core.deploy.telemetry import Telemetry
from core.store.shapes import Record


class ShadowScorer:
    def __init__(self, cache: ModelCache, telemetry: Telemetry,
                 executor: ThreadPoolExecutor) -> None:
        self.cache = cache
        self.telemetry = telemetry
        self.executor = executor
        self._lock = threading.Lock()
        self._pending: set[Future] = set()  # kept until done (see `wait`)

    def submit(self, name: str, version: int, records: list[Record],
               request_id: str) -> None:
        fut = self.executor.submit(self._score, name, version, records, request_id)
        with self._lock:
            self._pending.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: Future) -> None:
        with self._lock:
            self._pending.discard(fut)

    def wait(self, timeout: float | None = None) -> None:
        """Until the shadow copies submitted so far are scored (tests, shutdown)."""
        with self._lock:
            pending = list(self._pending)
        wait_all(pending, timeout=timeout)

    def _score(self, name: str, version: int, records: list[Record],
               request_id: str) -> None:
        t0 = time.perf_counter()
        try:
            preds, _ = score(self.cache.get(name, version), records)
        except Exception as exc:
            self.telemetry.record(name, version, (time.perf_counter() - t0) * 1000, False)
            self.telemetry.shadow_result(request_id, None, f"{type(exc).__name__}: {exc}"[:2000])
            return
        self.telemetry.record(name, version, (time.perf_counter() - t0) * 1000, True, preds)
        self.telemetry.shadow_result(request_id, preds, None)
