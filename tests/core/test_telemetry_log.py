"""The prediction log written by the buffered telemetry (orjson, rows kept as parsed when they
are plain JSON values) reads back as the requests sent it, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
import threading
from datetime import date, datetime

import numpy as np
import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

from core.deploy import telemetry
from core.deploy.telemetry import Telemetry
from core.store import PredictionLog, RequestInput, ServingStat
from core.store.db import Database
from core.store.tables import utcnow


def _log(t: Telemetry, request_id: str, records: list[dict], predictions: list) -> None:
    t.log(request_id=request_id, model_name="wine", version=1, predictions=predictions,
          shadow_version=None, records=records, created_at=utcnow())


def _read(db: Database) -> dict[str, tuple[list, list]]:
    with Session(db.engine) as s:
        preds = {r.request_id: r.predictions for r in s.exec(select(PredictionLog))}
        rows = {r.request_id: r.rows for r in s.exec(select(RequestInput))}
    return {k: (preds[k], rows.get(k)) for k in preds}


def test_plain_and_odd_rows_read_back_as_json_values(backend_db: Database) -> None:
    t = Telemetry(backend_db)
    plain = [{"a": 1.5, "b": "x é \"q\"", "c": None, "d": True, "e": 3},
             {"a": -2.0, "b": "", "c": 7, "d": False, "e": 2**40}]
    odd = [{"a": math.nan, "b": np.float64(2.5), "c": np.int64(4), "d": date(2024, 1, 2),
            "e": 2**70}]
    _log(t, "plain", plain, ["yes", "no"])
    _log(t, "odd", odd, [1.25])
    _log(t, "big", [{"a": 1}], [2**70])  # beyond 64 bits: the standard library writes it
    assert t.flush() == 3  # the three logged requests
    got = _read(backend_db)
    assert got["plain"] == (["yes", "no"], plain)
    assert got["odd"] == ([1.25], [{"a": None, "b": 2.5, "c": 4, "d": "2024-01-02",
                                    "e": 2**70}])
    assert got["big"] == ([2**70], [{"a": 1}])


def test_a_nan_among_plain_values_is_stored_as_null(db: Database) -> None:
    t = Telemetry(db)
    _log(t, "r", [{"a": 1.0, "b": "x"}, {"a": float("nan"), "b": None}], ["yes", "no"])
    t.flush()
    assert _read(db)["r"][1] == [{"a": 1.0, "b": "x"}, {"a": None, "b": None}]


def test_a_value_no_encoder_can_write_drops_its_request_alone(db: Database) -> None:
    """A logged request no encoder can write (nested past their limit) is dropped and
    counted at flush; the requests around it are written."""
    t = Telemetry(db)
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    _log(t, "before", [{"a": 1.0}], ["yes"])
    _log(t, "deep", [{"a": 2.0}], [deep])
    _log(t, "after", [{"a": 3.0}], ["no"])
    t.flush()
    assert t.dropped_rows == 1
    assert set(_read(db)) == {"before", "after"}


def _logged_ids(db: Database) -> list[str]:
    with Session(db.engine) as s:
        return sorted(r.request_id for r in s.exec(select(PredictionLog)))


def test_a_store_slower_than_the_traffic_costs_log_entries_not_memory(
        db: Database, monkeypatch) -> None:
    """Requests logged faster than flushes drain them: past either bound the oldest go
    (counted in dropped_rows and /metrics), the newest are written, memory stays bounded."""
    monkeypatch.setattr(telemetry, "MAX_QUEUED_LOGS", 50)
    monkeypatch.setattr(telemetry, "MAX_QUEUED_ROWS", 1000)
    t = Telemetry(db)
    for k in range(200):
        _log(t, f"r{k:03d}", [{"a": float(k)}], ["yes"])
    t.flush()
    kept = _logged_ids(db)
    assert 40 <= len(kept) <= 50
    assert kept == [f"r{k:03d}" for k in range(200 - len(kept), 200)]  # the newest
    assert t.dropped_rows == 200 - len(kept)
    assert b"workbench_telemetry_dropped_total %d.0" % t.dropped_rows in t.metrics.exposition()

    for k in range(10):  # 300 rows each: at most 1,000 rows wait
        _log(t, f"big{k}", [{"a": 1.0}] * 300, ["yes"] * 300)
    t.flush()
    assert [i for i in _logged_ids(db) if i.startswith("big")] == ["big7", "big8", "big9"]


def test_an_unreachable_store_keeps_the_newest_requests_within_the_bound(
        db: Database, monkeypatch) -> None:
    """A flush the store refuses keeps its requests for the next one, bounded like the
    buffer: after the store is back, the newest requests are written."""
    monkeypatch.setattr(telemetry, "MAX_QUEUED_LOGS", 30)
    stats = ServingStat.__table__
    stats.drop(db.engine)  # the store refuses even the counters: everything waits
    t = Telemetry(db)
    t.record("wine", 1, 3.0, True, ["yes"])
    for k in range(20):
        _log(t, f"r{k:02d}", [{"a": 1.0}], ["yes"])
    with pytest.raises(OperationalError):  # no such table
        t.flush()
    for k in range(20, 40):
        _log(t, f"r{k:02d}", [{"a": 1.0}], ["yes"])
    stats.create(db.engine)
    t.flush()
    kept = _logged_ids(db)
    assert kept == [f"r{k:02d}" for k in range(40 - len(kept), 40)] and len(kept) <= 30
    assert t.dropped_rows == 40 - len(kept)
    with Session(db.engine) as s:
        assert sum(r.count for r in s.exec(select(ServingStat))) == 1  # the counters wait


def test_a_flush_inserts_its_rows_in_a_few_statements_on_sqlite(db: Database) -> None:
    """sqlite3 releases and retakes the GIL around each statement: a flush thread beside a
    busy event loop that inserted one row per statement waited its turn per row and fell
    behind the traffic (docs/serving/session18.md). Rows go as multi-row INSERTs instead."""
    inserts: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.startswith("INSERT INTO predictionlog"):
            inserts.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    t = Telemetry(db)
    for k in range(2500):
        _log(t, f"r{k:04d}", [{"a": float(k)}], ["yes"])
    t.flush()
    assert len(_logged_ids(db)) == 2500
    assert len(inserts) == 3  # 1,000 rows per statement


def test_on_sqlite_the_log_is_stored_as_sqlalchemy_stores_it(db: Database, tmp_path,
                                                            monkeypatch) -> None:
    """On SQLite the flush writes the log below SQLAlchemy (core/store/sqlite_rows.py): every
    stored value (the text of each date and JSON value, every NULL) is the one SQLAlchemy's
    own insert stores, which the rest of the workbench reads back."""
    from datetime import timedelta, timezone

    from core.deploy.columns import Columns
    from core.store.scope import model_key

    at = datetime(2026, 3, 4, 5, 6, 7, 890, tzinfo=timezone(timedelta(hours=-5)))
    logs = [
        dict(request_id="plain", model_name="wine", version=1, predictions=["yes", "no"],
             shadow_version=None, records=[{"a": 1.5, "b": "é"}, {"a": None, "b": ""}],
             created_at=utcnow()),
        dict(request_id="shadowed", model_name=model_key("team-a", "wine"), version=3,
             predictions=[0.25], shadow_version=2, records=[{"a": math.nan}],
             created_at=at),
        dict(request_id="columns", model_name="wine", version=1, predictions=[1, 2],
             shadow_version=None, records=Columns(["a", "b"], [[1.0, 2.0], ["x", None]], 2),
             created_at=at.replace(microsecond=0)),
        dict(request_id="no-inputs", model_name="wine", version=1, predictions=[None],
             shadow_version=None, records=None, created_at=utcnow()),
        dict(request_id="too-big", model_name="wine", version=1, predictions=[0],
             shadow_version=None, records=[{"a": 1}] * (telemetry.MAX_LOGGED_ROWS + 1),
             created_at=utcnow()),
    ]

    def stored(store: Database, write) -> dict[str, list]:  # type: ignore[no-untyped-def]
        t = Telemetry(store)
        for row in logs:
            t.log(**row)
        write(t)
        with store.engine.connect() as c:
            raw = c.exec_driver_sql
            return {
                "log": [tuple(r) for r in raw(
                    "SELECT workspace, request_id, model_name, version, predictions, "
                    "shadow_version, shadow_predictions, shadow_error, actual, feedback_at, "
                    "created_at, typeof(predictions), typeof(created_at) FROM predictionlog "
                    "ORDER BY request_id")],
                "inputs": [tuple(r) for r in raw(
                    "SELECT workspace, request_id, model_name, rows, created_at "
                    "FROM requestinput ORDER BY request_id")]}

    fast = stored(db, Telemetry.flush)
    reference = Database(f"sqlite:///{tmp_path / 'reference.db'}")
    with monkeypatch.context() as m:
        m.setattr(telemetry, "is_sqlite", lambda s: False)  # SQLAlchemy's insert, as on PG
        slow = stored(reference, Telemetry.flush)
    reference.dispose()
    assert fast == slow
    assert [r[1] for r in fast["log"]] == ["columns", "no-inputs", "plain", "shadowed",
                                          "too-big"]
    assert [r[1] for r in fast["inputs"]] == ["columns", "plain", "shadowed"]
    with Session(db.engine) as s:  # and the ORM reads them back
        row = s.exec(select(PredictionLog).where(PredictionLog.request_id == "shadowed")).one()
    assert (row.created_at, row.workspace, row.shadow_version) == (at, "team-a", 2)


def test_cells_orjson_cannot_write_alone_read_back_as_before(db: Database) -> None:
    """The one-pass encoder writes what the long way wrote: a key that is not a string, a
    datetime and a numpy boolean as their plain forms; a list inside a cell as JSON."""
    t = Telemetry(db)
    _log(t, "keys", [{1: "one", "a": np.bool_(True)}], ["yes"])
    _log(t, "when", [{"t": datetime(2024, 1, 2, 3, 4, 5), "n": np.float32(0.5)}], ["no"])
    _log(t, "nested", [{"a": [1, 2], "b": {"c": None}}], ["yes"])
    t.flush()
    got = _read(db)
    assert got["keys"][1] == [{"1": "one", "a": True}]
    assert got["when"][1] == [{"t": "2024-01-02 03:04:05", "n": 0.5}]
    assert got["nested"][1] == [{"a": [1, 2], "b": {"c": None}}]


def test_requests_logged_while_flushes_run_are_each_written_or_counted_once(
        backend_db: Database, monkeypatch) -> None:
    """Request threads log while a flush thread drains and the bound trims, over and over:
    every request ends up written once or counted as dropped once, never both, never lost."""
    monkeypatch.setattr(telemetry, "MAX_QUEUED_LOGS", 40)
    t = Telemetry(backend_db)
    for attempt in range(5):
        done = threading.Event()

        def requests(prefix: str) -> None:
            for k in range(150):
                _log(t, f"{prefix}-{k:03d}", [{"a": float(k)}], ["yes"])

        def flushes(done: threading.Event) -> None:
            while not done.is_set():
                t.flush()

        flusher = threading.Thread(target=flushes, args=(done,))
        flusher.start()
        senders = [threading.Thread(target=requests, args=(f"a{attempt}-w{w}",))
                   for w in range(4)]
        for s in senders:
            s.start()
        for s in senders:
            s.join()
        done.set()
        flusher.join()
        t.flush()
        ids = _logged_ids(backend_db)
        assert len(ids) == len(set(ids))
        assert len(ids) + t.dropped_rows == 600 * (attempt + 1)
