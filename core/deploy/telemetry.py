"""Hot-path telemetry: per-version counters and latency histograms kept in memory and written
to the database in batches (one `ServingStat` row per version per flush, about once a second)
together with the buffered prediction log. Never one database write per request.

The same events also feed this process's Prometheus metrics (core/deploy/metrics.py), which
`/metrics` exposes summed over every server worker."""

from __future__ import annotations

import bisect
import collections
import itertools
import json
import logging
import math
import operator
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import JSON, bindparam, insert, update
from sqlalchemy.types import TypeDecorator
from sqlmodel import Session, select
from typing_extensions import TypedDict

from core.deploy.columns import Columns, stored
from core.deploy.metrics import BUCKETS_MS, ServingMetrics
from core.deploy.reservoir import Reservoir
from core.store import PredictionLog, RequestInput, RequestSample, ServingStat, utcnow
from core.store.db import Database
from core.store.scope import workspace_of_key
from core.store.shapes import Record
from core.store.sqlite_rows import insert_rows, is_sqlite, sqlite_datetime

log = logging.getLogger("workbench.serving")
__all__ = ["BUCKETS_MS", "Counter", "Telemetry", "TrafficSummary", "quantile", "stats_since"]
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"
SAMPLE_ROWS = 100  # scored rows kept per version per flush for live drift
MAX_LOGGED_ROWS = 10_000  # a bigger request's rows are not kept (its label cannot train)
# Logged requests kept for the next flush while the store is unreachable or slower than the
# traffic, and their rows: past either bound the oldest go (counted, warned about), so a
# store that falls behind costs log entries, never the server's memory.
MAX_QUEUED_LOGS = 100_000
MAX_QUEUED_ROWS = 200_000


_PLAIN = frozenset({str, int, float, bool, type(None)})


def _jsonable_rows(rows: list[Record]) -> list[Record]:
    """Request rows as JSON values (numpy scalars, NaN and dates made plain). Rows parsed
    from a JSON body are plain already: that is checked in C-level passes (types of keys and
    values; `v != v` only for NaN) and they are kept as they are, without a copy per cell."""
    if isinstance(rows, Columns):  # sent as columns: judged a column at a time
        values = list(itertools.chain.from_iterable(rows.data))
        if (_PLAIN.issuperset(map(type, values)) and not any(map(operator.ne, values, values))
                and {str}.issuperset(map(type, rows.names))):
            return rows.records()
        rows = rows.records()
    values = list(itertools.chain.from_iterable(map(dict.values, rows)))
    if (_PLAIN.issuperset(map(type, values)) and not any(map(operator.ne, values, values))
            and {str}.issuperset(map(type, itertools.chain.from_iterable(rows)))):
        return rows
    out = []
    for row in rows:
        clean = {}
        for k, v in row.items():
            if hasattr(v, "item"):
                v = v.item()
            if isinstance(v, float) and v != v:
                v = None
            elif not isinstance(v, (str, int, float, bool, type(None))):
                v = str(v)
            clean[str(k)] = v
        out.append(clean)
    return out


def _finite(value: Any) -> Any:
    """`value` with every non-finite float made None and every key a string: what JSON can
    say (PostgreSQL's json type refuses the `Infinity`/`NaN` tokens the standard library
    writes by default)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _dumps(value: Any) -> str:
    """Valid JSON for any logged value, one rule on every backend: NaN and ±infinity are
    written as null (orjson does so itself), integers beyond 64 bits exactly (the standard
    library's reading; JSON numbers have no size limit, both stores keep them exactly),
    anything else as its `str`. A value nested deeper than the encoders' recursion limit
    raises: its row is dropped and counted at flush (`Telemetry.dropped_rows`)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # an integer beyond 64 bits, a key that is not a string, ...
        return json.dumps(_finite(value), allow_nan=False, default=str)


def _dumps_or_null(value: Any) -> str | None:
    return None if value is None else _dumps(value)


def _row_value(value: Any) -> Any:
    """What `_jsonable_rows` makes of a cell orjson cannot write itself."""
    return value.item() if hasattr(value, "item") else str(value)


def _dumps_rows(rows: list[Record] | dict[str, Any]) -> str:
    """Request rows as JSON text in one orjson pass: the text `_dumps(_jsonable_rows(rows))`
    writes (NaN and infinities null, numpy scalars as numbers, dates and anything else as
    their `str`) at a third of its cost, which a busy server's flush thread takes from the
    event loop's GIL time. A list or dict inside a cell is written as JSON, as the columns
    of a V2 request always were. What orjson refuses (keys that are not strings, integers
    beyond 64 bits) goes the long way."""
    try:
        return orjson.dumps(rows, default=_row_value,
                            option=orjson.OPT_PASSTHROUGH_DATETIME).decode()
    except TypeError:
        return _dumps(_jsonable_rows(rows) if isinstance(rows, list) else rows)


class PlainJSON(TypeDecorator[Any]):
    """A JSON column's values written by `_dumps` (the prediction log's predictions): the
    standard library's encoder cost more CPU per 100-row request than scoring it. Read back
    like any JSON column."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Any) -> Any:
        return _dumps_or_null


class EncodedJSON(TypeDecorator[Any]):
    """A JSON column's values bound as JSON text already written (`_dumps_rows`)."""

    impl = JSON
    cache_ok = True

    def bind_processor(self, dialect: Any) -> Any:
        return None


class TrafficSummary(TypedDict):
    """A counter as the API, the guard rails and the pages read it (`VersionLive`)."""

    requests: int
    ok: int
    failed: int
    rejected: int
    errors: int
    error_rate: float
    latency_mean_ms: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    predictions: dict[str, int | float]


@dataclass
class Counter:
    """Requests that reached one version, by outcome: ok, failed (`errors`: the version could
    not score them) and rejected (the records did not match its schema: the caller's
    mistake). Latency and error rate are over the scored ones (ok + failed)."""

    count: int = 0  # every outcome
    errors: int = 0  # failed
    latency_sum_ms: float = 0.0
    hist: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS_MS) + 1))
    predictions: dict[str, int | float] = field(default_factory=dict)
    rejected: int = 0

    @property
    def scored(self) -> int:
        return self.count - self.rejected

    @property
    def ok(self) -> int:
        return self.count - self.rejected - self.errors

    @classmethod
    def of_row(cls, row: Any) -> Counter:
        """The counter a stored ServingStat row holds."""
        return cls(row.count, row.errors, row.latency_sum_ms, list(row.latency_hist),
                   {k: v for k, v in row.predictions.items() if v is not None},  # a NaN sum
                   row.rejected)

    def add(self, latency_ms: float, ok: bool, predictions: list[Any] | None,
            rejected: bool = False) -> None:
        self.count += 1
        if rejected:
            self.rejected += 1
            return
        self.errors += 0 if ok else 1
        self.latency_sum_ms += latency_ms
        self.hist[bisect.bisect_left(BUCKETS_MS, latency_ms)] += 1
        if not predictions:
            return
        if isinstance(predictions[0], float):  # one version answers all floats or all labels
            self.predictions["n"] = self.predictions.get("n", 0) + len(predictions)
            self.predictions["sum"] = self.predictions.get("sum", 0.0) + sum(predictions)
        else:
            for k, n in collections.Counter(map(str, predictions)).items():
                self.predictions[k] = self.predictions.get(k, 0) + n

    def merge(self, other: Counter) -> None:
        self.count += other.count
        self.errors += other.errors
        self.rejected += other.rejected
        self.latency_sum_ms += other.latency_sum_ms
        self.hist = [a + b for a, b in zip(self.hist, other.hist, strict=True)]
        for k, v in other.predictions.items():
            self.predictions[k] = self.predictions.get(k, 0) + v

    def summary(self) -> TrafficSummary:
        return {"requests": self.count, "ok": self.ok, "failed": self.errors,
                "rejected": self.rejected, "errors": self.errors,
                "error_rate": self.errors / self.scored if self.scored else 0.0,
                "latency_mean_ms": self.latency_sum_ms / self.scored if self.scored else None,
                "latency_p50_ms": quantile(self.hist, 0.50),
                "latency_p99_ms": quantile(self.hist, 0.99),
                "predictions": self.predictions}


def quantile(hist: list[int], q: float) -> float | None:
    """Upper edge of the bucket holding the q-quantile (conservative for guard rails)."""
    total = sum(hist)
    if not total:
        return None
    need, seen = q * total, 0
    for i, n in enumerate(hist):
        seen += n
        if seen >= need:
            return float(BUCKETS_MS[i]) if i < len(BUCKETS_MS) else float("inf")
    return float("inf")


class Telemetry:
    """Thread-safe buffers; `flush()` drains them into `db` in one unit of work."""

    def __init__(self, db: Database, metrics: ServingMetrics | None = None) -> None:
        self.db = db
        self.metrics = metrics or ServingMetrics()
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, int], Counter] = {}
        self._logs: list[Record] = []
        self._queued_rows = 0  # rows of the requests in self._logs
        self._shadow: list[tuple[str, list[Any] | None, str | None]] = []
        self._samples: dict[tuple[str, int], Reservoir] = {}
        self._flush_lock = threading.Lock()
        # logged requests, samples, shadow results the store refused or the bounds dropped
        self.dropped_rows = 0

    def sample(self, name: str, version: int, records: list[Record]) -> None:
        """Keep a uniform sample of the scored rows (at most SAMPLE_ROWS per version per
        flush) for live drift: one comparison for most requests (core/deploy/reservoir.py)."""
        key = (name, version)
        with self._lock:
            kept = self._samples.get(key)
            if kept is None:
                kept = self._samples[key] = Reservoir(SAMPLE_ROWS)
            kept.add(records)

    def record(self, name: str, version: int, latency_ms: float, ok: bool,
               predictions: list[Any] | None = None) -> None:
        key = (name, version)
        with self._lock:
            c = self._pending.get(key)
            if c is None:
                c = self._pending[key] = Counter()
            c.add(latency_ms, ok, predictions)
        self.metrics.observe(name, version, latency_ms / 1000.0, ok)

    def reject(self, name: str, version: int) -> None:
        """A request that reached the version but did not match its schema (a 422)."""
        key = (name, version)
        with self._lock:
            c = self._pending.get(key)
            if c is None:
                c = self._pending[key] = Counter()
            c.add(0.0, False, None, rejected=True)
        self.metrics.reject(name, version)

    def log(self, **row: Any) -> None:
        with self._lock:
            self._logs.append(row)
            self._queued_rows += len(row.get("records") or ())
            if len(self._logs) > MAX_QUEUED_LOGS or self._queued_rows > MAX_QUEUED_ROWS:
                self._drop_oldest()

    def _drop_oldest(self) -> None:
        """Bring the buffered requests back within both bounds (the lock held): the oldest
        go, at least a tenth at a time so a full buffer is not trimmed once per request."""
        n, rows = 0, self._queued_rows
        while n < len(self._logs) and (len(self._logs) - n > MAX_QUEUED_LOGS
                                       or rows > MAX_QUEUED_ROWS or n < len(self._logs) // 10):
            rows -= len(self._logs[n].get("records") or ())
            n += 1
        del self._logs[:n]
        self._queued_rows = rows
        self._dropped(n)
        log.warning("prediction log behind: the store is unreachable or slower than the "
                    "traffic; the %d oldest buffered requests were dropped (%d so far)",
                    n, self.dropped_rows)

    def _dropped(self, n: int) -> None:
        self.dropped_rows += n
        self.metrics.dropped(n)

    def shadow_result(self, request_id: str, predictions: list[Any] | None,
                      error: str | None) -> None:
        with self._lock:
            self._shadow.append((request_id, predictions, error))

    def flush(self) -> int:
        """Write what is buffered; returns the number of rows written. One unit of work; if
        the store refuses it, its parts are written apart: the counters first (plain numbers:
        if even they fail, the store is unreachable and everything waits for the next flush),
        then each logged request, sample and shadow result alone, a row refused alone being
        dropped, counted in `dropped_rows` and logged. So one poisoned row is never re-queued
        forever with the counters behind it."""
        self.metrics.publish()
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
                logs, self._logs = self._logs, []
                self._queued_rows = 0
                shadow, self._shadow = self._shadow, []
                samples, self._samples = self._samples, {}
            if not pending and not logs and not shadow and not samples:
                return 0
            try:
                with self.db.session() as s:
                    # one unscoped unit of work for every workspace served: each row
                    # names its model's workspace (core/store/scope.ModelKey)
                    _write_counters(s, pending)
                    _write_logs(s, logs)
                    _write_samples(s, samples)
                    _write_shadow(s, shadow)
            except Exception:
                log.warning("telemetry flush failed: writing its rows apart", exc_info=True)
                return self._flush_apart(pending, logs, shadow, samples)
            return len(pending) + len(logs) + len(shadow) + len(samples)

    def _flush_apart(self, pending: dict[tuple[str, int], Counter], logs: list[Record],
                     shadow: list[tuple[str, list[Any] | None, str | None]],
                     samples: dict[tuple[str, int], Reservoir]) -> int:
        try:
            with self.db.session() as s:
                _write_counters(s, pending)
        except Exception:
            with self._lock:  # the store is unreachable: keep the data for the next flush
                for key, c in pending.items():
                    self._pending.setdefault(key, Counter()).merge(c)
                self._logs[:0] = logs
                self._queued_rows += sum(len(row.get("records") or ()) for row in logs)
                self._shadow[:0] = shadow
                if len(self._logs) > MAX_QUEUED_LOGS or self._queued_rows > MAX_QUEUED_ROWS:
                    self._drop_oldest()
            raise
        units: list[tuple[Any, Any]] = [(_write_logs, [row]) for row in logs]
        units += [(_write_samples, {key: v}) for key, v in samples.items()]
        units += [(_write_shadow, [one]) for one in shadow]
        written = len(pending)
        for write, rows in units:
            try:
                with self.db.session() as s:
                    write(s, rows)
                written += 1
            except Exception as e:
                with self._lock:
                    self._dropped(1)
                log.warning("telemetry row dropped (%s refused it: %s); %d dropped so far",
                            write.__name__.removeprefix("_write_"), type(e).__name__,
                            self.dropped_rows)
        return written


def _write_counters(s: Session, pending: dict[tuple[str, int], Counter]) -> None:
    for (name, version), c in pending.items():
        s.add(ServingStat(workspace=workspace_of_key(name), model_name=str(name),
                          version=version, worker=WORKER_ID, count=c.count, errors=c.errors,
                          rejected=c.rejected, latency_sum_ms=c.latency_sum_ms,
                          latency_hist=c.hist, predictions=_finite(c.predictions)))


def _rows_json(row: Record) -> str:
    records = row["records"]
    return _dumps_rows(stored(records) if isinstance(records, Columns) else records)


def _write_logs(s: Session, logs: list[Record]) -> None:
    if not logs:
        return
    if is_sqlite(s):
        _write_logs_sqlite(s, logs)
        return
    s.exec(insert(PredictionLog.__table__).values(  # one executemany, not an object per row
        predictions=bindparam("predictions_json", type_=PlainJSON())),
        params=[{"shadow_version": None, "shadow_predictions": None, "shadow_error": None,
                 "actual": None, "feedback_at": None,
                 **{k: v for k, v in row.items() if k not in ("records", "predictions")},
                 "predictions_json": row["predictions"],
                 "workspace": workspace_of_key(row["model_name"]),
                 "model_name": str(row["model_name"])} for row in logs])
    inputs = [{"request_id": row["request_id"], "workspace": workspace_of_key(row["model_name"]),
               "model_name": str(row["model_name"]), "rows_json": _rows_json(row),
               "created_at": row["created_at"]}
              for row in logs if 0 < len(row.get("records") or ()) <= MAX_LOGGED_ROWS]
    if inputs:
        s.exec(insert(RequestInput.__table__).values(
            rows=bindparam("rows_json", type_=EncodedJSON())), params=inputs)


# what a logged request fills; the rest (id, shadow results, labels) stays NULL until later
_LOG_COLUMNS = ("workspace", "request_id", "model_name", "version", "predictions",
                "shadow_version", "created_at")
_INPUT_COLUMNS = ("workspace", "request_id", "model_name", "rows", "created_at")


def _write_logs_sqlite(s: Session, logs: list[Record]) -> None:
    """`_write_logs` on SQLite: the same stored values (tests/core/test_telemetry_log.py
    compares them with SQLAlchemy's), a third of the flush thread's Python time."""
    owners = {name: (workspace_of_key(name), str(name))
              for name in {row["model_name"] for row in logs}}
    requests, inputs = [], []
    for row in logs:
        workspace, name = owners[row["model_name"]]
        at = sqlite_datetime(row["created_at"])
        requests.append((workspace, row["request_id"], name, row["version"],
                         _dumps_or_null(row["predictions"]), row.get("shadow_version"), at))
        if 0 < len(row.get("records") or ()) <= MAX_LOGGED_ROWS:
            inputs.append((workspace, row["request_id"], name, _rows_json(row), at))
    insert_rows(s, PredictionLog.__table__, _LOG_COLUMNS, requests)
    insert_rows(s, RequestInput.__table__, _INPUT_COLUMNS, inputs)


def _write_samples(s: Session, samples: dict[tuple[str, int], Reservoir]) -> None:
    if not samples:
        return
    now = utcnow()
    s.exec(insert(RequestSample.__table__).values(
        rows=bindparam("rows_json", type_=EncodedJSON())),
        params=[{"workspace": workspace_of_key(name), "model_name": str(name),
                 "version": version, "seen": kept.seen, "at": now,
                 "rows_json": _dumps_rows(kept.rows)}
                for (name, version), kept in samples.items()])


def _write_shadow(s: Session, shadow: list[tuple[str, list[Any] | None, str | None]]) -> None:
    for request_id, preds, error in shadow:
        s.exec(update(PredictionLog).where(PredictionLog.request_id == request_id)
               .values(shadow_predictions=_finite(preds), shadow_error=error))


def stats_since(name: str, version: int, since: datetime | None, *,
                session: Session) -> Counter:
    """Flushed telemetry of one version from every worker since a moment."""
    total = Counter()
    q = select(ServingStat).where(ServingStat.model_name == name,
                                  ServingStat.version == version)
    if since is not None:
        q = q.where(ServingStat.at >= since)
    for row in session.exec(q):
        total.merge(Counter.of_row(row))
    return total
