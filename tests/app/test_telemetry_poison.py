"""One odd request cannot stop a server's telemetry: a body whose extra keys hold `1e400`
(read as infinity) and a 25-digit integer is logged as valid JSON (infinity as null, the
integer exactly), and the requests after it still reach the prediction log and the serving
counters, on SQLite and PostgreSQL (whose json type refuses `Infinity`). A row the store
refuses anyway is dropped and counted, never re-queued forever."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.api import create_app
from core.deploy import deploy
from core.deploy.telemetry import Telemetry
from core.store import PredictionLog, RequestInput, RequestSample, ServingStat
from core.store.db import Database
from core.store.tables import utcnow
from tests.factories import register, store_session

ODD = (b'{"records": [{"a": 0.2, "b": 0.5, "plan": "basic", "x": 1e400,'
       b' "big": 1234567890123456789012345}]}')  # extra keys: not scored, logged

ODD_LOGGED = [{"a": 0.2, "b": 0.5, "plan": "basic", "x": None,
               "big": 1234567890123456789012345}]


@pytest.fixture
def client(backend_db: Database) -> Iterator[TestClient]:
    register()
    with store_session() as s:
        deploy("churn", 1, 100, session=s)
    with TestClient(create_app(background=False)) as c:
        yield c


def _predict(c: TestClient, body: bytes) -> str:
    r = c.post("/v1/models/churn/predict", content=body,
               headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    return r.json()["request_id"]


def test_an_infinite_and_a_huge_number_do_not_stop_the_logs_or_counters(
        client: TestClient, backend_db: Database) -> None:
    odd = _predict(client, ODD)
    client.app.state.serving.flush()
    later = [_predict(client, b'{"records": [{"a": 0.1, "b": 0.5, "plan": "pro"}]}')
             for _ in range(3)]
    client.app.state.serving.flush()
    with Session(backend_db.engine) as s:
        logged = {r.request_id for r in s.exec(select(PredictionLog))}
        rows = {r.request_id: r.rows for r in s.exec(select(RequestInput))}
        counted = sum(r.count for r in s.exec(select(ServingStat)))
        sampled = [row for r in s.exec(select(RequestSample)) for row in r.rows]
    assert set(later) <= logged
    assert odd in logged
    assert rows[odd] == ODD_LOGGED
    assert counted == 4
    assert ODD_LOGGED[0] in sampled


def _log(t: Telemetry, request_id: str, records: list[dict]) -> None:
    t.log(request_id=request_id, model_name="churn", version=1, predictions=["yes"],
          shadow_version=None, records=records, created_at=utcnow())


def test_a_row_the_store_refuses_is_dropped_and_counted_not_requeued(
        backend_db: Database) -> None:
    t = Telemetry(backend_db)
    t.record("churn", 1, 3.0, True, ["yes"])
    _log(t, "ok-1", [{"a": 1.0}])
    _log(t, "ok-1", [{"a": 2.0}])  # the same request id again: refused alone (unique)
    _log(t, "ok-2", [{"a": 3.0}])
    t.flush()
    assert t.dropped_rows == 1
    t.record("churn", 1, 4.0, True, ["no"])
    _log(t, "ok-3", [{"a": 4.0}])
    t.flush()
    with Session(backend_db.engine) as s:
        logged = {r.request_id for r in s.exec(select(PredictionLog))}
        counted = sum(r.count for r in s.exec(select(ServingStat)))
    assert logged == {"ok-1", "ok-2", "ok-3"}
    assert counted == 2
    assert t.dropped_rows == 1
