"""Micro-batched scoring: concurrent requests for one loaded version go through one predict
call, under a bound on what may be pending."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from core.deploy.cache import LoadedModel
from core.errors import OverloadedError, WorkbenchError
from core.store.shapes import Record


class PredictionFailedError(WorkbenchError):
    """The pipeline refused these values (e.g. a category it cannot encode)."""

    code = "prediction_failed"
    http_status = 422


def score(lm: LoadedModel, records: list[Record]):
    """(predictions, probabilities) of one request, a pipeline's refusal as a 422."""
    return _scored(lm, lm.predict_records, records)


def score_together(lm: LoadedModel, parts: list[list[Record]]):
    """(predictions, probabilities) of several requests' rows in one predict call."""
    return _scored(lm, lm.predict_parts, parts)


def _scored(lm: LoadedModel, predict: Any, rows: Any):
    try:
        return predict(rows)
    except WorkbenchError:
        raise
    except (ValueError, TypeError, KeyError) as exc:
        raise PredictionFailedError(f"{lm.label} could not score these records: "
                                    f"{str(exc)[:500]}") from exc


def _score_batch(batch: list[tuple[LoadedModel, list[dict], Any]]) -> list[Any]:
    lm = batch[0][0]
    if len(batch) > 1 and lm.market is None:  # a market request's rows are its own history
        try:
            preds, probas = score_together(lm, [recs for _, recs, _ in batch])
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


class Batcher:
    """Concurrent requests for one loaded version are scored in one predict call: while one
    batch is scored, new requests queue and go together in the next.

    Batches up to `max_rows` are scored on the event loop itself: handing them to a thread
    costs two wake-ups and GIL hand-offs per batch, which measured as more than the scoring of
    a 1-row request and halved throughput at concurrency 8 (docs/DECISIONS.md). A single
    request bigger than that goes to the predict thread, so it cannot stall the loop.

    The queue is bounded (`check_room`): past `max_pending_requests` or `max_pending_rows`
    (0 = no bound) submitted and not yet answered, new requests are refused at once.

    The drain tasks are kept in `_tasks` until they finish (the event loop holds only weak
    references to tasks: one not referenced elsewhere may be collected mid-run)."""

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
        self._tasks: set[asyncio.Task] = set()

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

    async def submit(self, lm: LoadedModel, records: list[Record]):
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
                self._spawn(loop, key)
            return await fut
        finally:
            self.pending_requests -= 1
            self.pending_rows -= n

    def _spawn(self, loop: asyncio.AbstractEventLoop, key: int) -> None:
        task = loop.create_task(self._drain(key))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
                self._spawn(loop, key)
            else:
                self._queues.pop(key, None)
