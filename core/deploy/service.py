"""The serving runtime of one process: deployment state refreshed from the database at most
`state_refresh_s` old, the loaded-model cache, micro-batched prediction, telemetry, shadow
scoring, feedback and the guard-rail loop. app/api/ is a thin HTTP layer over it."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import update
from sqlmodel import select

from core.deploy import deployments as dep
from core.deploy import guard_alert
from core.deploy.cache import LoadedModel, ModelCache, probability_dicts
from core.deploy.guards import Verdict, judge
from core.deploy.router import _rng, route
from core.deploy.telemetry import Telemetry, stats_since
from core.errors import (
    ConflictError,
    NotFoundError,
    OverloadedError,
    SchemaMismatchError,
    WorkbenchError,
)
from core.settings import get_settings
from core.store import PredictionLog, session_scope, utcnow

log = logging.getLogger("workbench.serving")
EVALUATIONS_AT_ONCE = 2  # per server process: evaluate/compare beyond this get 503


class PredictionFailedError(WorkbenchError):
    """The pipeline refused these values (e.g. a category it cannot encode)."""

    code = "prediction_failed"
    http_status = 422


@dataclass
class Answer:
    model: str
    version: int
    request_id: str
    predictions: list[Any]
    proba: np.ndarray | None = None  # rows × classes, classifiers only
    classes: list[Any] | None = None

    @property
    def probabilities(self) -> list[dict[Any, float]] | None:
        return probability_dicts(self.classes or [], self.proba)


class Batcher:
    """Concurrent requests for one loaded version are scored in one predict call: while one
    batch is scored, new requests queue and go together in the next.

    Batches up to `max_rows` are scored on the event loop itself: handing them to a thread
    costs two wake-ups and GIL hand-offs per batch, which measured as more than the scoring of
    a 1-row request and halved throughput at concurrency 8 (docs/DECISIONS.md). A single
    request bigger than that goes to the predict thread, so it cannot stall the loop.

    The queue is bounded (`check_room`): past `max_pending_requests` or `max_pending_rows`
    (0 = no bound) submitted and not yet answered, new requests are refused at once."""

    def __init__(self, executor: ThreadPoolExecutor, window_s: float, max_rows: int,
                 max_pending_requests: int = 0, max_pending_rows: int = 0) -> None:
        self.executor = executor
        self.window_s = window_s
        self.max_rows = max_rows
        self.max_pending_requests = max_pending_requests
        self.max_pending_rows = max_pending_rows
        self.pending_requests = 0  # submitted, not yet answered (every version together:
        self.pending_rows = 0      # they share this process's CPU)
        self._queues: dict[int, list[tuple[LoadedModel, list[dict], asyncio.Future]]] = {}
        self._running: set[int] = set()

    def check_room(self) -> None:
        """Raise OverloadedError when the queue is at a bound. A request is admitted whenever
        the queue is below both, whatever its own size, so one large request is never refused
        for ever; the overshoot is at most that request."""
        if (0 < self.max_pending_requests <= self.pending_requests
                or 0 < self.max_pending_rows <= self.pending_rows):
            raise OverloadedError(
                f"This server is at its bound of pending predictions ({self.pending_requests} "
                f"requests, {self.pending_rows} rows queued; WORKBENCH_MAX_PENDING_REQUESTS="
                f"{self.max_pending_requests}, WORKBENCH_MAX_PENDING_ROWS="
                f"{self.max_pending_rows}). Retry after the Retry-After delay, or add server "
                "workers.")

    async def submit(self, lm: LoadedModel, records: list[dict[str, Any]]):
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        key = id(lm)
        n = len(records)
        self.pending_requests += 1
        self.pending_rows += n
        try:
            self._queues.setdefault(key, []).append((lm, records, fut))
            if key not in self._running:
                self._running.add(key)
                loop.create_task(self._drain(key))
            return await fut
        finally:
            self.pending_requests -= 1
            self.pending_rows -= n

    async def _drain(self, key: int) -> None:
        loop = asyncio.get_running_loop()
        try:
            if self.window_s > 0:
                await asyncio.sleep(self.window_s)
            else:
                await asyncio.sleep(0)  # let requests that are already readable join
            while self._queues.get(key):
                queue = self._queues[key]
                batch, rows = [], 0
                while queue and (not batch or rows + len(queue[0][1]) <= self.max_rows):
                    item = queue.pop(0)
                    batch.append(item)
                    rows += len(item[1])
                try:
                    if rows <= self.max_rows:
                        results = _score_batch(batch)
                    else:
                        results = await loop.run_in_executor(self.executor, _score_batch, batch)
                except BaseException as exc:  # never leave a caller waiting forever
                    for _, _, fut in batch:
                        if not fut.done():
                            fut.set_exception(exc if isinstance(exc, Exception)
                                              else RuntimeError("prediction cancelled"))
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, _, fut), res in zip(batch, results, strict=True):
                    if fut.done():
                        continue
                    if isinstance(res, BaseException):
                        fut.set_exception(res)
                    else:
                        fut.set_result(res)
        finally:
            self._running.discard(key)
            if self._queues.get(key):  # arrived after the last check
                self._running.add(key)
                loop.create_task(self._drain(key))
            else:
                self._queues.pop(key, None)


def score(lm: LoadedModel, records: list[dict[str, Any]]):
    try:
        return lm.predict_records(records)
    except WorkbenchError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise PredictionFailedError(f"{lm.label} could not score these records: "
                                    f"{str(exc)[:500]}") from exc


def _score_batch(batch: list[tuple[LoadedModel, list[dict], Any]]) -> list[Any]:
    lm = batch[0][0]
    if len(batch) > 1 and lm.market is None:  # a market request's rows are its own history
        try:
            preds, probas = score(lm, [r for _, recs, _ in batch for r in recs])
        except Exception:
            pass  # one request's values broke the batch: score each alone to blame the right one
        else:
            out, i = [], 0
            for _, recs, _ in batch:
                n = len(recs)
                out.append((preds[i:i + n], probas[i:i + n] if probas is not None else None))
                i += n
            return out
    results: list[Any] = []
    for _, recs, _ in batch:
        try:
            results.append(score(lm, recs))
        except Exception as exc:  # handed to the request's future
            results.append(exc)
    return results


class Serving:
    def __init__(self) -> None:
        settings = get_settings()
        self.settings = settings
        self.cache = ModelCache(settings.model_cache_size)
        self.telemetry = Telemetry()
        self._states: dict[str, tuple[dep.DeploymentState, float]] = {}
        # OpenMP thread limits are per calling thread: set them inside the pools' threads.
        self._predict_pool = ThreadPoolExecutor(1, thread_name_prefix="predict",
                                                initializer=_one_native_thread)
        self._side_pool = ThreadPoolExecutor(1, thread_name_prefix="shadow-warm",
                                             initializer=_one_native_thread)
        self._warming: set[tuple[str, int]] = set()
        self.batcher = Batcher(self._predict_pool, settings.batch_window_ms / 1000.0,
                               settings.batch_max_rows, settings.max_pending_requests,
                               settings.max_pending_rows)
        # evaluate/compare score whole labelled tables on the request's thread: at most this
        # many at a time per process, so they cannot starve predictions (503 beyond)
        self._evaluations = threading.BoundedSemaphore(EVALUATIONS_AT_ONCE)
        self.guard_log: list[dict[str, Any]] = []
        self._guard_errors: dict[str, str] = {}  # model → last failure alerted
        self._guard_judged: set[str] = set()  # models whose rails judged in this process
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresher: threading.Thread | None = None
        self.started_at = time.time()

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

    # -- state ------------------------------------------------------------------------------
    def state(self, name: str, *, fresh: bool = False) -> dep.DeploymentState:
        """The rule for `name`, at most `state_refresh_s` old. With the background loop
        running, the refresher thread keeps it fresh, so requests never wait on the database."""
        now = time.monotonic()
        cached = self._states.get(name)
        if cached and not fresh and (self._refresher is not None
                                     or now - cached[1] < self.settings.state_refresh_s):
            return cached[0]
        with session_scope() as s:
            st = dep.get_state(name, session=s)
        self._states[name] = (st, now)
        if st.candidate is not None and self.cache.peek(name, st.candidate) is None:
            self._warm_async(name, st.candidate)
        return st

    def forget(self, name: str) -> None:
        self._states.pop(name, None)

    def _warm_async(self, name: str, version: int) -> None:
        key = (name, version)
        if key in self._warming:
            return
        self._warming.add(key)

        def work() -> None:
            try:
                self.cache.get(name, version)
            except Exception as exc:
                log.warning("could not load %s:%s: %s", name, version, exc)
            finally:
                self._warming.discard(key)

        self._side_pool.submit(work)

    def model(self, name: str, version: int) -> LoadedModel:
        return self.cache.get(name, version)

    def warm(self, name: str, version: int) -> LoadedModel:
        """Load (verified) into this process before the version takes traffic."""
        return self.cache.get(name, version)

    # -- prediction -------------------------------------------------------------------------
    def pick(self, name: str, key: str | None) -> tuple[dep.DeploymentState, int, int | None]:
        """(state, version that answers, version scored in shadow or None)."""
        st = self.state(name)
        if st.stable is None and st.candidate is None:
            raise NotFoundError(f"Model {name!r} has no deployed version. Deploy a version "
                                f"first (Deployments page; CLI: "
                                f"`workbench deploy {name} VERSION --percent 100`).")
        candidate_ready = st.candidate is not None and \
            self.cache.peek(name, st.candidate) is not None
        if st.mode == "shadow" or not candidate_ready:
            shadow = None
            if st.mode == "shadow" and candidate_ready and (
                    st.percent >= 100 or _rng.random() * 100 < st.percent):
                shadow = st.candidate
            return st, st.stable, shadow  # type: ignore[return-value]
        return st, route(name, st.stable, st.candidate, st.percent, key), None  # type: ignore

    async def predict(self, name: str, records: list[dict[str, Any]],
                      key: str | None = None) -> Answer:
        self.batcher.check_room()  # before routing: an overload is no version's failure
        request_id = uuid.uuid4().hex
        st, version, shadow = self.pick(name, key)
        answer = await self._answer(name, version, records, request_id,
                                    fallback=st.stable if version != st.stable else None)
        if self.settings.log_predictions:
            self.telemetry.log(request_id=request_id, model_name=name, version=answer.version,
                               predictions=answer.predictions, shadow_version=shadow,
                               records=records if self.settings.log_inputs else None,
                               created_at=utcnow())
        if shadow is not None:
            asyncio.get_running_loop().run_in_executor(
                self._side_pool, self._shadow, name, shadow, records, request_id)
        return answer

    async def _answer(self, name: str, version: int, records: list[dict[str, Any]],
                      request_id: str, fallback: int | None) -> Answer:
        t0 = time.perf_counter()
        try:
            lm = self.cache.get(name, version)
            preds, probas = await self.batcher.submit(lm, records)
        except Exception as exc:
            # Every request that reached the version counts: a schema mismatch as rejected
            # (the caller's mistake), anything else, stable's failures too, as failed.
            ms = (time.perf_counter() - t0) * 1000
            if fallback is None:
                self._count_failure(name, version, ms, isinstance(exc, SchemaMismatchError))
                raise
            # The candidate failed: answer with stable. Its schema mismatch is the caller's
            # mistake only if stable rejects the records too; otherwise the candidate failed.
            stable_rejects = False
            try:
                return await self._answer(name, fallback, records, request_id, None)
            except SchemaMismatchError:
                stable_rejects = True
                raise
            finally:
                self._count_failure(name, version, ms,
                                    stable_rejects and isinstance(exc, SchemaMismatchError))
        ms = (time.perf_counter() - t0) * 1000
        self.telemetry.record(name, version, ms, True, preds)
        self.telemetry.sample(name, version, records)
        return Answer(name, version, request_id, preds, probas, lm.classes)

    def _count_failure(self, name: str, version: int, ms: float, rejected: bool) -> None:
        if rejected:
            self.telemetry.reject(name, version)
        else:
            self.telemetry.record(name, version, ms, False)

    def _shadow(self, name: str, version: int, records: list[dict[str, Any]],
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

    # -- feedback and scorecards ------------------------------------------------------------
    def feedback(self, name: str, request_id: str, actual: Any) -> dict[str, Any]:
        self.flush()
        with session_scope() as s:
            row = s.exec(select(PredictionLog).where(PredictionLog.request_id == request_id,
                                                     PredictionLog.model_name == name)).first()
            if row is None:
                raise NotFoundError(f"No prediction {request_id!r} of model {name!r} (request "
                                    "ids come from the predict response).")
            actual_list = actual if isinstance(actual, list) else [actual]
            if len(actual_list) != len(row.predictions):
                raise dep.InvalidRequestError(
                    f"Request {request_id} scored {len(row.predictions)} records; send "
                    f"{len(row.predictions)} actual values (a list) or one value for one record.")
            s.exec(update(PredictionLog).where(PredictionLog.id == row.id)
                   .values(actual=actual_list, feedback_at=utcnow()))
            return {"request_id": request_id, "version": row.version, "recorded": len(actual_list)}

    def scorecard(self, name: str, task: str) -> dict[str, Any]:
        self.flush()
        per_version: dict[int, list[int]] = {}
        shadow: dict[tuple[int, int], dict[str, Any]] = {}
        with session_scope() as s:
            rows = s.exec(select(PredictionLog).where(PredictionLog.model_name == name,
                                                      PredictionLog.actual.is_not(None))).all()
        for r in rows:
            for i, actual in enumerate(r.actual or []):
                pv = per_version.setdefault(r.version, [0, 0])
                pv[0] += 1
                pv[1] += _hit(task, r.predictions[i], actual)
                if r.shadow_version is not None and r.shadow_predictions is not None:
                    sc = shadow.setdefault((r.version, r.shadow_version),
                                           {"n": 0, "stable": 0.0, "shadow": 0.0, "agree": 0})
                    sc["n"] += 1
                    sc["stable"] += _hit(task, r.predictions[i], actual)
                    sc["shadow"] += _hit(task, r.shadow_predictions[i], actual)
                    sc["agree"] += int(_same(r.predictions[i], r.shadow_predictions[i]))
        measure = "mae" if task == "regression" else "accuracy"
        return {
            "measure": measure,
            "versions": [{"version": v, "labelled": n, measure: hits / n}
                         for v, (n, hits) in sorted(per_version.items())],
            "shadow": [{"stable": a, "candidate": b, "labelled": sc["n"],
                        f"stable_{measure}": sc["stable"] / sc["n"],
                        f"candidate_{measure}": sc["shadow"] / sc["n"],
                        "agreement": sc["agree"] / sc["n"]}
                       for (a, b), sc in sorted(shadow.items())],
        }

    # -- background work --------------------------------------------------------------------
    def flush(self) -> int:
        return self.telemetry.flush()

    def check_guards(self) -> list[Verdict]:
        """Judge every running canary this process knows about, and act on the verdict. One
        model's failure (rails that are not valid, a database error on its row) is logged and
        raised as a GUARD alert, and the loop carries on with the others."""
        acted = []
        for name in list(self._states):
            try:
                verdict = self._guard(name)
            except Exception as exc:
                self._guard_failed(name, exc)
                continue
            if verdict is not None:
                acted.append(verdict)
        return acted

    def _guard(self, name: str) -> Verdict | None:
        try:
            st = self.state(name, fresh=True)
        except NotFoundError:
            self.forget(name)
            return None
        if st.candidate is None or st.mode != "canary":
            self._guard_ok(name)
            return None
        verdict = judge(st, stats_since(name, st.candidate, st.step_started_at))
        self._guard_ok(name)
        if verdict.action == "hold":
            return None
        kw = {"actor": "guard-rails", "reason": verdict.reason,
              "expect_candidate": st.candidate, "metrics": verdict.metrics or {}}
        try:
            with session_scope() as s:
                if verdict.action == "rollback":
                    dep.rollback(name, automatic=True, session=s, **kw)
                elif verdict.action == "advance":
                    dep.set_percent(name, verdict.percent or 100.0, session=s, **kw)
                else:
                    dep.promote(name, session=s, **kw)
        except ConflictError as exc:  # another worker or a person acted first
            log.info("guard rail %s on %s skipped: %s", verdict.action, name, exc)
            return None
        self.forget(name)
        self.guard_log.append({"model": name, "action": verdict.action,
                               "reason": verdict.reason, "at": utcnow().isoformat()})
        return verdict

    def _guard_failed(self, name: str, exc: Exception) -> None:
        """Log and alert once per distinct failure (the loop ticks every second)."""
        message = exc.message if isinstance(exc, WorkbenchError) else \
            f"{type(exc).__name__}: {exc}"
        cached = self._states.get(name)
        version = cached[0].candidate if cached else None
        text = (f"The guard rails of {name!r} could not judge its canary "
                f"({name}:{version}), so it has no automatic rollback: {message} Fix the "
                f"rails (deploy the candidate again with valid guard_rails) or roll it back.")
        if self._guard_errors.get(name) == text:
            log.debug("guard rails of %s still cannot run: %s", name, message)
            return
        log.error("guard rails of %s could not run", name, exc_info=exc)
        self._guard_errors[name] = text
        self.guard_log.append({"model": name, "action": "error", "reason": message,
                               "at": utcnow().isoformat()})
        try:
            with session_scope() as s:
                guard_alert.report(name, version, text, session=s)
        except Exception:
            log.exception("could not raise the guard-rail alert of %s", name)

    def _guard_ok(self, name: str) -> None:
        # the first good judgement in this process also clears a GUARD alert an earlier
        # process (before a restart) left open
        if self._guard_errors.pop(name, None) is not None or name not in self._guard_judged:
            with session_scope() as s:
                guard_alert.clear(name, session=s)
            self._guard_judged.add(name)

    def tick(self) -> list[Verdict]:
        self.flush()
        return self.check_guards()

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()

        def loop() -> None:
            while not self._stop.wait(self.settings.telemetry_flush_s):
                try:
                    self.tick()
                except Exception:  # the loop must survive a database hiccup
                    log.exception("telemetry flush / guard rails failed")

        def refresh() -> None:
            while not self._stop.wait(self.settings.state_refresh_s):
                for name in list(self._states):
                    try:
                        self.state(name, fresh=True)
                    except NotFoundError:
                        self.forget(name)
                    except Exception:
                        log.exception("could not refresh the deployment of %s", name)

        self._thread = threading.Thread(target=loop, name="serving-tick", daemon=True)
        self._thread.start()
        self._refresher = threading.Thread(target=refresh, name="serving-state", daemon=True)
        self._refresher.start()

    def stop(self) -> None:
        self._stop.set()
        for t in (self._thread, self._refresher):
            if t is not None:
                t.join(timeout=5)
        self._thread = self._refresher = None
        self._side_pool.shutdown(wait=True)
        try:
            self.flush()
        except Exception:
            log.exception("final telemetry flush failed")
        self._predict_pool.shutdown(wait=False)


def _one_native_thread() -> None:
    """One BLAS/OpenMP thread per predict: parallelism comes from batching and server
    workers; OpenMP teams spin-waiting on a shared machine cost far more than they give."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1)


def _same(a: Any, b: Any) -> bool:
    return str(a) == str(b)


def _hit(task: str, pred: Any, actual: Any) -> float:
    if task == "regression":
        try:
            return abs(float(pred) - float(actual))
        except (TypeError, ValueError):
            return 0.0
    return float(_same(pred, actual))
