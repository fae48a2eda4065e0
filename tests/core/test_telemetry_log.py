"""The prediction log written by the buffered telemetry (orjson, rows kept as parsed when they
are plain JSON values) reads back as the requests sent it, on SQLite and PostgreSQL."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
from sqlmodel import Session, select

from core.deploy.telemetry import Telemetry
from core.store import PredictionLog, RequestInput
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
