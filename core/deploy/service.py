"""The serving runtime of one process, composed of small parts and fronted by `Serving`, the
facade app/api/ routes use:

- `DeploymentStates` (states.py): each model's rule, at most `state_refresh_s` old;
- `Predictor` (predictor.py): routing, the model cache, micro-batching, fallback to stable;
- `ShadowScorer` (shadow.py): the shadow candidate's copy, off the response path;
- `Telemetry` (telemetry.py) with Prometheus `ServingMetrics` (metrics.py): counted in memory,
  flushed to the database about once a second;
- `GuardLoop` (guard_loop.py): the guard rails acting on running canaries.

It takes the store (`Database`) from its composition root and opens one short session per
unit of work; nothing on the request path waits on the database or loads a model on the event
loop."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from threadpoolctl import threadpool_limits

from core.deploy import treewalk
from core.deploy.batcher import Batcher
from core.deploy.cache import LoadedModel, ModelCache
from core.deploy.guard_loop import GuardLoop
from core.deploy.guards import Verdict
from core.deploy.metrics import ServingMetrics
from core.deploy.onnx_runtime import choose, request
from core.deploy.periodic import Periodic
from core.deploy.predictor import Answer, Predictor
from core.deploy.public import DeploymentState
from core.deploy.shadow import ShadowScorer
from core.deploy.states import DeploymentStates
from core.deploy.telemetry import Telemetry
from core.deploy.workspace_view import WorkspaceServing
from core.errors import OverloadedError
from core.settings import Settings
from core.store.db import Database
from core.store.shapes import Record

__all__ = ["Answer", "Serving"]
log = logging.getLogger("workbench.serving")
EVALUATIONS_AT_ONCE = 2  # per server process: evaluate/compare beyond this get 503


class Serving:
    def __init__(self, db: Database, settings: Settings | None = None) -> None:
        settings = settings or db.settings
        self.db = db
        self.settings = settings
        self.metrics = ServingMetrics()
        treewalk.set_threads(settings.walk_threads or min(2, os.cpu_count() or 1))
        # OpenMP thread limits are per calling thread: set them inside the pools' threads.
        self.predict_pool = ThreadPoolExecutor(1, thread_name_prefix="predict",
                                               initializer=_one_native_thread)
        self.side_pool = ThreadPoolExecutor(1, thread_name_prefix="shadow-warm",
                                            initializer=_one_native_thread)
        self.cache = ModelCache(db, settings.model_cache_size,
                                on_change=self.metrics.set_loaded, chooser=self.side_pool)
        self.telemetry = Telemetry(db, self.metrics)
        self.batcher = Batcher(self.predict_pool, settings.batch_window_ms / 1000.0,
                               settings.batch_max_rows, settings.max_pending_requests,
                               settings.max_pending_rows)
        self.states = DeploymentStates(db, settings.state_refresh_s,
                                       on_read=self._warm_candidate)
        self.shadow = ShadowScorer(self.cache, self.telemetry, self.side_pool)
        self.predictor = Predictor(settings, self.states, self.cache, self.batcher,
                                   self.telemetry, self.shadow, self.side_pool)
        self.guards = GuardLoop(db, self.states)
        # evaluate/compare score whole labelled tables on the request's thread: at most this
        # many at a time per process, so they cannot starve predictions (503 beyond)
        self._evaluations = threading.BoundedSemaphore(EVALUATIONS_AT_ONCE)
        self._views: dict[str, WorkspaceServing] = {}
        self._loops = [Periodic("serving-tick", settings.telemetry_flush_s, self.tick),
                       Periodic("serving-state", settings.state_refresh_s,
                                self.states.refresh_all)]

    def view(self, workspace: str) -> WorkspaceServing:
        """This runtime as `workspace` sees it (names qualified by it): made once, kept."""
        view = self._views.get(workspace)
        if view is None:
            view = self._views[workspace] = WorkspaceServing(self, workspace)
        return view

    # -- what the routes call ---------------------------------------------------------------
    async def predict(self, name: str, records: list[Record],
                      key: str | None = None, version: int | None = None) -> Answer:
        return await self.predictor.predict(name, records, key, version)

    def state(self, name: str, *, fresh: bool = False) -> DeploymentState:
        """The rule of `name` (blocking on a miss: for threads; the event loop uses
        `astate`)."""
        return self.states.get(name, fresh=fresh)

    async def astate(self, name: str) -> DeploymentState:
        return await self.states.aget(name)

    def forget(self, name: str) -> None:
        """Drop the cached rule after this process changed it (read again on next use)."""
        self.states.forget(name)

    def warm(self, name: str, version: int) -> LoadedModel:
        """Load (verified) into this process before the version takes traffic (blocking)."""
        return self.cache.get(name, version)

    model = warm

    async def amodel(self, name: str, version: int) -> LoadedModel:
        return await self.predictor.model(name, version)

    async def default_model(self) -> str:
        return await self.states.default_model(self.settings.default_model)

    @contextmanager
    def evaluation_slot(self) -> Iterator[None]:
        """Admit one evaluation (evaluate, compare), or raise OverloadedError at once."""
        if not self._evaluations.acquire(blocking=False):
            raise OverloadedError(
                f"{EVALUATIONS_AT_ONCE} evaluations are already running in this server process; "
                "retry after the Retry-After delay (predictions are still answered).",
                retry_after_s=5)
        try:
            yield
        finally:
            self._evaluations.release()

    def _warm_candidate(self, st: DeploymentState) -> None:
        if st.candidate is not None and self.cache.peek(st.name, st.candidate) is None:
            self.predictor.warm_soon(st.name, st.candidate)
        self.use_runtimes(st, wait=False)

    def use_runtimes(self, st: DeploymentState, *, wait: bool = True) -> None:
        """Loaded stable/candidate versions whose runtime changed choose again (onnx_runtime
        .choose: builds a session, probes, times): here, or in the side pool."""
        for v in (st.stable, st.candidate):
            lm = self.cache.peek(st.name, v) if v is not None else None
            if lm is None:
                continue
            requested = st.runtime_of(v)
            gen = request(lm, requested, changed_only=True)  # once per change
            if gen is None:
                continue
            if wait:
                choose(lm, requested, gen)
            else:  # a later change makes this choice stale: it is then dropped
                self.side_pool.submit(choose, lm, requested, gen)

    # -- background work --------------------------------------------------------------------
    @property
    def guard_log(self) -> list[dict[str, Any]]:
        return self.guards.log

    def flush(self) -> int:
        """Write the buffered telemetry and prediction log now."""
        return self.telemetry.flush()

    def check_guards(self) -> list[Verdict]:
        return self.guards.check()

    def tick(self) -> list[Verdict]:
        self.flush()
        return self.check_guards()

    def start(self) -> None:
        """Flush and judge every `telemetry_flush_s`, refresh rules every `state_refresh_s`
        (requests then take the cached rule whatever its age)."""
        for loop in self._loops:
            loop.start()
        self.states.kept_fresh = True

    def stop(self) -> None:
        """Stop the loops, let shadow copies finish and flush what is buffered."""
        self.states.kept_fresh = False
        for loop in self._loops:
            loop.stop()
        self.side_pool.shutdown(wait=True)
        try:
            self.flush()
        except Exception:
            log.exception("final telemetry flush failed")
        self.predict_pool.shutdown(wait=False)


def _one_native_thread() -> None:
    """One BLAS/OpenMP thread per predict: parallelism comes from batching and server
    workers; OpenMP teams spin-waiting on a shared machine cost far more than they give."""
    threadpool_limits(limits=1)
