"""Review of issue 15's tracking slice: input that reached the database as a 500 (a timestamp
UTC cannot hold, NUL characters PostgreSQL's text refuses) and batches without a bound (params,
tags, metrics per call; filters per listing) are 422s naming the field, and write nothing."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from core.tracking import checks


@pytest.fixture
def client(backend: str):
    with TestClient(create_app(background=False), raise_server_exceptions=False) as c:
        yield c


def _run(client: TestClient) -> int:
    started = client.post("/v1/runs", json={"experiment": "review"})
    assert started.status_code == 201, started.text
    return started.json()["id"]


def _refused(response, *words: str) -> None:
    assert response.status_code == 422, response.text
    for word in words:
        assert word in response.json()["detail"], response.json()


def _nothing_logged(client: TestClient, rid: int) -> None:
    got = client.get(f"/v1/runs/{rid}").json()
    assert (got["params"], got["metrics"], got["tags"]) == ({}, {}, {}), got


def test_a_timestamp_utc_cannot_hold_is_422_not_500(client: TestClient) -> None:
    rid = _run(client)
    _refused(client.post(f"/v1/runs/{rid}/log", json={"metrics": [
        {"key": "ok", "value": 1.0},
        {"key": "m", "value": 1.0, "timestamp": "0001-01-01T00:00:00+14:00"}]}),
        "metrics.m.timestamp", "UTC")
    _nothing_logged(client, rid)


def test_a_timestamp_with_an_offset_is_stored_as_the_same_instant(client: TestClient) -> None:
    rid = _run(client)
    logged = client.post(f"/v1/runs/{rid}/log", json={"metrics": [
        {"key": "m", "value": 1.0, "timestamp": "2026-01-01T14:00:00+14:00"}]})
    assert logged.status_code == 200, logged.text
    (point,) = logged.json()["metric_history"]["m"]
    assert point["timestamp"].replace("Z", "+00:00") == "2026-01-01T00:00:00+00:00"


@pytest.mark.parametrize("body", [{"params": {"p": "a\x00b"}}, {"tags": {"t": "a\x00b"}}])
def test_a_nul_character_is_422_on_every_backend(client: TestClient, body: dict) -> None:
    rid = _run(client)
    _refused(client.post(f"/v1/runs/{rid}/log", json=body), "NUL")
    _nothing_logged(client, rid)
    _refused(client.post("/v1/runs", json={"experiment": "review", "name": "a\x00b"}), "name")


@pytest.mark.parametrize(("field", "body"), [
    ("params", {"params": {f"p{i}": i for i in range(checks.PARAMS_PER_CALL + 1)}}),
    ("tags", {"tags": {f"t{i}": "x" for i in range(checks.TAGS_PER_CALL + 1)}}),
])
def test_one_call_logs_a_bounded_batch(client: TestClient, field: str, body: dict) -> None:
    rid = _run(client)
    _refused(client.post(f"/v1/runs/{rid}/log", json=body), field, "at most")
    _nothing_logged(client, rid)
    _refused(client.post("/v1/runs", json={"experiment": "review", **body}), field, "at most")
    assert client.get("/v1/runs").json()["total"] == 1  # no half-made run left behind


def test_a_listing_takes_a_bounded_number_of_filters(client: TestClient) -> None:
    _run(client)
    many = [f"params.k{i}=1" for i in range(checks.FILTERS_MAX + 1)]
    _refused(client.get("/v1/runs", params={"filter": many}), "filter", "at most")
    fine = client.get("/v1/runs", params={"filter": many[:checks.FILTERS_MAX]})
    assert fine.status_code == 200 and fine.json()["total"] == 0
