"""REST endpoints for jobs, retraining, schedules, monitoring and alerts, with a real worker
(an in-process job worker thread, so no process is spawned)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.api import create_app
from app.cli import app as cli
from core.store import Database
from core.usecases.worker import job_worker
from tests.factories import DATA


@pytest.fixture
def client(home: Path) -> Iterator[TestClient]:
    result = CliRunner().invoke(cli, ["seed"])
    assert result.exit_code == 0, result.output
    with TestClient(create_app(background=False)) as c:
        yield c


def _wait(client: TestClient, job_id: int, states: set[str], timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = client.get(f"/v1/jobs/{job_id}").json()
        if doc["state"] in states:
            return doc
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} never reached {states}")


@pytest.mark.slow  # a real search in a worker
def test_jobs_are_queued_run_and_retrained_over_http(client: TestClient, db: Database) -> None:
    worker = job_worker(db)
    thread = threading.Thread(target=worker.run, kwargs={"max_jobs": 2}, daemon=True)
    thread.start()
    r = client.post("/v1/jobs", json={"dataset": "wine", "target": "cultivar", "budget": 3,
                                      "estimators": ["linear"], "name": "wine"})
    assert r.status_code == 201, r.text
    job = _wait(client, r.json()["id"], {"COMPLETED", "FAILED"})
    assert job["state"] == "COMPLETED" and job["trigger"] == "api"
    assert [t["to"] for t in job["transitions"]] == ["PENDING", "RUNNING", "COMPLETED"]
    r = client.post("/v1/models/wine/retrain")
    assert r.status_code == 201
    retrain = _wait(client, r.json()["id"], {"COMPLETED", "FAILED"})
    assert retrain["state"] == "COMPLETED" and retrain["gate"]["metric"] == "log_loss"
    thread.join(timeout=30)
    assert len(client.get("/v1/jobs").json()) == 2


def test_job_requests_are_validated_before_anything_is_queued(client: TestClient) -> None:
    r = client.post("/v1/jobs", json={"dataset": "wine", "target": "nope"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_data"
    assert "'nope' is not in the data" in r.json()["detail"]
    assert client.post("/v1/jobs", json={"dataset": 999, "target": "x"}).status_code == 404
    assert client.post("/v1/jobs", json={"dataset": "wine", "target": "cultivar",
                                         "budget": -1}).status_code == 422
    assert client.get("/v1/jobs").json() == []
    queued = client.post("/v1/jobs", json={"dataset": "wine", "target": "cultivar"}).json()
    cancelled = client.post(f"/v1/jobs/{queued['id']}/cancel").json()
    assert cancelled["state"] == "CANCELLED"
    assert client.post(f"/v1/jobs/{queued['id']}/cancel").status_code == 409


def test_schedules_monitoring_and_alerts_over_http(client: TestClient) -> None:
    CliRunner().invoke(cli, ["train", str(DATA / "wine.csv"), "--target", "cultivar",
                             "--estimator", "linear", "--name", "wine"])
    r = client.post("/v1/schedules", json={"model": "wine", "when": "02:00"})
    assert r.status_code == 201 and r.json()["cron"] == "0 2 * * *"
    sid = r.json()["id"]
    assert client.post(f"/v1/schedules/{sid}/pause").json()["paused"] is True
    assert client.post("/v1/schedules", json={"model": "wine", "when": "26:00"}).status_code \
        == 400
    assert client.get("/v1/models/wine/monitor?window=1h").json()["versions"] == {}
    assert client.get("/v1/models/wine/monitor?window=2y").status_code == 400
    rows = pd.read_csv(DATA / "wine.csv").drop(columns="cultivar").head(60).to_dict("records")
    drift = client.post("/v1/models/wine/drift", json={"records": rows}).json()
    assert drift["features"] == 13 and "results" in drift
    live = client.get("/v1/models/wine/drift?window=1h").json()
    assert (live["rows"], live["results"], live["label"]) == (0, [], None)
    assert client.get("/v1/alerts").json() == []
    assert client.post("/v1/alerts/99/ack").status_code == 404
    assert client.delete(f"/v1/schedules/{sid}").json() == {"deleted": sid}
