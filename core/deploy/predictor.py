"""The prediction path: pick the version that answers (sticky canary routing or shadow),
score through the batcher, fall back to stable when the candidate fails, and count every
outcome in telemetry. Nothing here touches the database: rules come from the state cache,
versions from the model cache, and either one's miss is loaded in a thread."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.automl.intervals import half_width, intervals
from core.deploy.batcher import Batcher
from core.deploy.cache import LoadedModel, ModelCache, probability_dicts
from core.deploy.enums import DeploymentMode
from core.deploy.public import DeploymentState
from core.deploy.router import _rng, route
from core.deploy.shadow import ShadowScorer
from core.deploy.states import DeploymentStates
from core.deploy.telemetry import Telemetry
from core.errors import NotFoundError, SchemaMismatchError
from core.settings import Settings
from core.store import utcnow
from core.store.shapes import IntervalsDoc, Record

log = logging.getLogger("workbench.serving")


class _RequestIds:
    """Time-ordered random UUIDs (RFC 9562 version 7: 48 bits of Unix milliseconds, then 74
    random bits from os.urandom), as 32 hex digits.

    Time first because every logged prediction is indexed by its request id: random (version
    4) ids sent each insert to a random page of those indexes, so once the log outgrew
    SQLite's page cache every flush rewrote most index pages (a flush of 3,000 requests into
    a 300k-row log: ~260 ms, against ~120 ms with these ids; docs/serving/session11.md); ids
    that grow with time append. Still unpredictable: feedback is attached by request id, and
    74 random bits per millisecond cannot be guessed. The random bytes are drawn 1,024 ids at
    a time (each system call lets go of the GIL, and on a busy server the flush thread then
    holds the request for up to a switch interval); a forked worker starts with an empty
    pool, so two workers never hand out the same ids."""

    def __init__(self, batch: int = 1024) -> None:
        self._batch, self._pool, self._at = batch, b"", 0
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._pool, self._at = b"", 0

    def __call__(self) -> str:
        with self._lock:
            if self._at >= len(self._pool):
                self._pool, self._at = os.urandom(10 * self._batch), 0
            rand = int.from_bytes(self._pool[self._at:self._at + 10])
            self._at += 10
        ms = time.time_ns() // 1_000_000 & _MS_MASK
        # 48 bits of time | version 7 | 12 random bits | variant 0b10 | 62 random bits
        value = (ms << 80 | 0x7 << 76 | (rand >> 62 & 0xFFF) << 64 | 0b10 << 62
                 | rand & _LOW_62)
        return f"{value:032x}"


_MS_MASK = (1 << 48) - 1
_LOW_62 = (1 << 62) - 1
_request_id = _RequestIds()


@dataclass
class Answer:
    model: str
    version: int
    request_id: str
    predictions: list[Any]
    proba: np.ndarray | None = None  # rows × classes, classifiers only
    classes: list[Any] | None = None
    intervals_doc: IntervalsDoc | None = None  # the answering version's, regression only

    @property
    def probabilities(self) -> list[dict[Any, float]] | None:
        return probability_dicts(self.classes or [], self.proba)

    def intervals(self, coverage: float | None = None) -> list[list[float]] | None:
        """[lower, upper] per prediction from the answering version's stored half-width (the
        fast and the general path predict the same values, so they agree here too)."""
        return intervals(self.predictions, half_width(
            self.intervals_doc, coverage, f"{self.model}:{self.version}"))


class Predictor:
    def __init__(self, settings: Settings, states: DeploymentStates, cache: ModelCache,
                 batcher: Batcher, telemetry: Telemetry, shadow: ShadowScorer,
                 warm_executor: ThreadPoolExecutor) -> None:
        self.settings = settings
        self.states = states
        self.cache = cache
        self.batcher = batcher
        self.telemetry = telemetry
        self.shadow = shadow
        self._warm_executor = warm_executor
        self._warming: set[tuple[str, int]] = set()
        self._warming_lock = threading.Lock()

    # -- loading ------------------------------------------------------------------------------
    async def model(self, name: str, version: int) -> LoadedModel:
        """The loaded version; a miss is loaded (verified) in a thread, off the event loop."""
        lm = self.cache.hit(name, version)
        if lm is not None:
            return lm
        return await asyncio.get_running_loop().run_in_executor(None, self.cache.get, name,
                                                                version)

    def warm_soon(self, name: str, version: int) -> None:
        """Load the version in the background (a new candidate before it takes traffic)."""
        key = (name, version)
        with self._warming_lock:
            if key in self._warming:
                return
            self._warming.add(key)

        def work() -> None:
            try:
                self.cache.get(name, version)
            except Exception as exc:
                log.warning("could not load %s:%s: %s", name, version, exc)
            finally:
                with self._warming_lock:
                    self._warming.discard(key)

        self._warm_executor.submit(work)

    # -- routing ------------------------------------------------------------------------------
    def pick(self, st: DeploymentState, key: str | None) -> tuple[int, int | None]:
        """(version that answers, version scored in shadow or None)."""
        name = st.name
        if st.stable is None and st.candidate is None:
            raise NotFoundError(f"Model {name!r} has no deployed version. Deploy a version "
                                f"first (Deployments page; CLI: "
                                f"`workbench deploy {name} VERSION --percent 100`).")
        candidate_ready = st.candidate is not None and \
            self.cache.peek(name, st.candidate) is not None
        shadow_mode = st.mode == DeploymentMode.SHADOW
        if shadow_mode or not candidate_ready:
            shadow = None
            if shadow_mode and candidate_ready and (
                    st.percent >= 100 or _rng.random() * 100 < st.percent):
                shadow = st.candidate
            return st.stable, shadow  # type: ignore[return-value]
        return route(name, st.stable, st.candidate, st.percent, key), None  # type: ignore

    # -- prediction ---------------------------------------------------------------------------
    async def predict(self, name: str, records: list[Record],
                      key: str | None = None, version: int | None = None) -> Answer:
        """`version` pins the version that answers (NAME:VERSION, e.g. the Open Inference
        Protocol's versions route): no canary routing, no shadow, no fallback."""
        self.batcher.check_room()  # before routing: an overload is no version's failure
        request_id = _request_id()
        if version is None:
            # the common case without awaiting: a fresh rule and a loaded version are at hand
            st = self.states.peek(name) or await self.states.aget(name)
            version, shadow = self.pick(st, key)
            fallback = st.stable if version != st.stable else None
        else:
            shadow = fallback = None
        answer = await self._answer(name, version, records, request_id, fallback=fallback)
        settings = self.settings
        if settings.log_predictions:
            self.telemetry.log(request_id=request_id, model_name=name, version=answer.version,
                               predictions=answer.predictions, shadow_version=shadow,
                               records=records if settings.log_inputs else None,
                               created_at=utcnow())
        if shadow is not None:
            self.shadow.submit(name, shadow, records, request_id)
        return answer

    async def _answer(self, name: str, version: int, records: list[Record],
                      request_id: str, fallback: int | None) -> Answer:
        t0 = time.perf_counter()
        try:
            lm = self.cache.hit(name, version) or await self.model(name, version)
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
        return Answer(name, version, request_id, preds, probas, lm.classes, lm.intervals)

    def _count_failure(self, name: str, version: int, ms: float, rejected: bool) -> None:
        if rejected:
            self.telemetry.reject(name, version)
        else:
            self.telemetry.record(name, version, ms, False)
