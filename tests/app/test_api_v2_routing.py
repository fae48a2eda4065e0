"""The V2 infer route takes the same serving path as /v1/models/{name}/predict: the canary
split and sticky routing (`parameters.request_key`), telemetry per version (on SQLite and
PostgreSQL), the prediction log that feedback joins, and load shedding with Retry-After."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from app.api import create_app
from core.deploy import deployments as dep
from core.deploy.columns import stored_records
from core.deploy.feedback_table import requests_to_label
from core.deploy.router import route
from core.store import RequestInput, utcnow
from tests.factories import ROOT, free_port, record, register, store_session, wait_healthy

BODY = {"inputs": [{"name": "a", "shape": [1], "datatype": "FP64", "data": [0.5]},
                   {"name": "b", "shape": [1], "datatype": "FP64", "data": [0.5]},
                   {"name": "plan", "shape": [1], "datatype": "BYTES", "data": ["pro"]}]}


@pytest.fixture
def canary(home: Path) -> Iterator[TestClient]:
    register()
    register(seed=1)
    with store_session() as s:
        dep.deploy("churn", 1, session=s)
        dep.deploy("churn", 2, percent=10, session=s)
    with TestClient(create_app(background=False)) as c:
        yield c


def _version(client: TestClient, key: str | None = None) -> int:
    body = {**BODY, "parameters": {"request_key": key}} if key is not None else BODY
    r = client.post("/v2/models/churn/infer", json=body)
    assert r.status_code == 200, r.text
    return int(r.json()["model_version"])


@pytest.mark.slow
def test_canary_split_and_sticky_keys_through_v2(canary: TestClient) -> None:
    assert canary.app.state.serving.cache.peek("churn", 2) is not None  # warmed: it routes
    keys = [f"user-{i}" for i in range(1_000)]
    by_key = {k: _version(canary, k) for k in keys}
    # exactly the sticky hash's choice for every key, so the share is the contract's
    assert by_key == {k: route("churn", 1, 2, 10, k) for k in keys}
    assert 0.07 <= list(by_key.values()).count(2) / len(keys) <= 0.13
    assert {k: _version(canary, k) for k in keys[:200]} == {k: by_key[k] for k in keys[:200]}
    # without a key each request is routed at random: 2,000 at 10 % land near 10 %
    share = [_version(canary) for _ in range(2_000)].count(2) / 2_000
    assert 0.06 <= share <= 0.14  # ±4 points: over 3 standard deviations at n = 2,000


def test_the_request_key_header_is_honoured_too(canary: TestClient) -> None:
    keys = [f"k{i}" for i in range(60)]
    by_header = {k: int(canary.post("/v2/models/churn/infer", json=BODY,
                                    headers={"X-Request-Key": k}).json()["model_version"])
                 for k in keys}
    assert by_header == {k: route("churn", 1, 2, 10, k) for k in keys}


def test_v2_requests_are_counted_logged_and_take_feedback(backend: str, home: Path) -> None:
    register()
    register(seed=1)
    with store_session() as s:
        dep.deploy("churn", 1, session=s)
    with TestClient(create_app(background=False)) as client:
        ids = []
        for _ in range(7):
            r = client.post("/v2/models/churn/infer", json=BODY)
            assert r.status_code == 200
            ids.append(r.headers["X-Request-Id"])
        pinned = client.post("/v2/models/churn/versions/2/infer", json=BODY)
        assert pinned.status_code == 200
        bad = {"inputs": BODY["inputs"][:2]}  # refused before scoring: no version charged
        assert client.post("/v2/models/churn/infer", json=bad).status_code == 400
        client.app.state.serving.flush()
        live = client.get("/v1/models/churn/monitor").json()["versions"]
        assert (live["1"]["requests"], live["1"]["ok"]) == (7, 7)
        assert (live["2"]["requests"], live["2"]["ok"]) == (1, 1)
        fb = client.post("/v1/models/churn/feedback", json={"request_id": ids[0],
                                                            "actual": "yes"})
        assert fb.status_code == 200, fb.text
    # the columns sent are kept as columns, and read back as the rows that were scored
    with store_session() as s:
        table = requests_to_label("churn", utcnow() - timedelta(hours=1), session=s)
        kept = s.exec(select(RequestInput.rows).where(RequestInput.request_id == ids[0])).one()
    assert stored_records(kept) == [{"a": 0.5, "b": 0.5, "plan": "pro"}]
    first = table.set_index("request_id").loc[ids[0]]
    assert (first["a"], first["plan"], first["actual"]) == (0.5, "pro", "yes")


@pytest.mark.serial  # a held predict thread and a burst: alone, as test_api_overload
def test_an_overloaded_server_answers_v2_with_503_and_retry_after(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    register()
    with store_session() as s:
        dep.deploy("churn", 1, session=s)
    monkeypatch.setenv("WORKBENCH_MAX_PENDING_ROWS", "0")
    monkeypatch.setenv("WORKBENCH_MAX_PENDING_REQUESTS", "1")
    monkeypatch.setenv("WORKBENCH_BATCH_MAX_ROWS", "1")
    with TestClient(create_app(background=False)) as client:
        serving = client.app.state.serving
        release = threading.Event()
        serving.predict_pool.submit(release.wait, 60)  # the predict thread is busy
        answers: list = []
        held = threading.Thread(target=lambda: answers.append(client.post(
            "/v1/models/churn/predict", json={"records": [record(1), record(2)]})))
        held.start()
        try:
            deadline = time.monotonic() + 30  # a guard against hanging, not a timed assertion
            while serving.batcher.pending_requests < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            r = client.post("/v2/models/churn/infer", json=BODY)
            assert r.status_code == 503, r.text
            assert r.json()["error"].startswith("overloaded: ")
            assert r.headers["Retry-After"].isdigit()
        finally:
            release.set()
            held.join(30)
        assert answers[0].status_code == 200  # the admitted request is still answered
        assert client.post("/v2/models/churn/infer", json=BODY).status_code == 200


@pytest.mark.slow
def test_a_v2_client_round_trip_against_workbench_serve(home: Path) -> None:
    """Over real HTTP: metadata, the pandas codec, the versions route, sticky keys and an
    error (one worker: across workers routing is the same hash, see test_serving_live.py)."""
    register()
    register(seed=1)
    with store_session() as s:
        dep.deploy("churn", 1, session=s)
        dep.deploy("churn", 2, percent=10, session=s)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)],
                            cwd=ROOT,
                            env={**os.environ, "WORKBENCH_HOME": str(home)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        with httpx.Client(base_url=url, timeout=30) as c:
            meta = c.get("/v2/models/churn").json()
            assert [i["name"] for i in meta["inputs"]] == ["a", "b", "plan"]
            pd_body = {"parameters": {"content_type": "pd"}, "inputs": [
                {**t, "shape": [1, 1]} for t in BODY["inputs"]]}
            doc = c.post("/v2/models/churn/versions/2/infer", json=pd_body).json()
            stable_key = next(f"s{i}" for i in range(100) if route("churn", 1, 2, 10,
                                                                   f"s{i}") == 1)
            v1 = c.post("/v1/models/churn/predict", json={
                "records": [{"a": 0.5, "b": 0.5, "plan": "pro"}],
                "request_key": stable_key}).json()
            assert doc["model_version"] == "2"
            keys = [f"user-{i}" for i in range(80)]
            by_key = {k: c.post("/v2/models/churn/infer", json={
                **BODY, "parameters": {"request_key": k}}).json()["model_version"]
                for k in keys}
            assert by_key == {k: str(route("churn", 1, 2, 10, k)) for k in keys}
            assert v1["version"] == 1  # the same answer as /predict from the same version
            again = c.post("/v2/models/churn/versions/1/infer", json=pd_body).json()
            assert again["outputs"][0]["data"] == v1["predictions"]
            assert again["outputs"][1]["data"] == [v1["probabilities"][0][cls]
                                                   for cls in ("no", "yes")]
            bad = c.post("/v2/models/churn/infer", json={"inputs": BODY["inputs"][:1]})
            assert bad.status_code == 400 and "'plan'" in bad.json()["error"]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
