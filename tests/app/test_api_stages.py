"""POST /v1/models/{name}/versions/{version}/stage and the stage and semver in GET
/v1/models/{name}: typed answers, 409s with what to do, the archived refusal of a deployment,
and schemathesis over the route (every answer matches its declared response schema)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from core.deploy import deployments as dep
from core.identity import local_principal
from tests.factories import register, store_session

ROUTE = "/v1/models/{name}/versions/{version}/stage"


@pytest.fixture
def client(home: Path) -> Iterator[TestClient]:
    for seed in range(3):
        register(seed=seed)
    with store_session() as s:
        dep.deploy("churn", 1, session=s)  # 1 is production and serves
    with TestClient(create_app(background=False)) as c:
        yield c


def _stage(c: TestClient, version: int, **body: object):
    return c.post(ROUTE.format(name="churn", version=version), json=body)


def _error(resp, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "detail"}
    return body["detail"]


def test_a_stage_move_answers_what_it_did(client: TestClient) -> None:
    ok = _stage(client, 2, stage="Production", archive_existing=True, reason="better",
                expected_production=1)
    assert ok.status_code == 200, ok.text
    assert ok.json() == {"model": "churn", "version": 2, "semver": "1.0.1",
                         "from_stage": "None", "to_stage": "Production", "changed": True,
                         "production": 2, "archived_previous": 1, "aliases_removed": {},
                         "reason": "better", "actor": local_principal().actor}
    versions = client.get("/v1/models/churn").json()["versions"]
    assert [(v["version"], v["stage"], v["semver"]) for v in versions] == [
        (1, "Archived", "1.0.0"), (2, "Production", "1.0.1"), (3, "None", "1.0.2")]
    assert client.get("/v1/deployments/churn").json()["stable"] == 2  # traffic followed
    loaded = client.get("/v1/models/churn").json()["loaded_here"]
    assert 2 in [m["version"] for m in loaded]  # warmed before it took the traffic


def test_refusals_say_what_to_do(client: TestClient) -> None:
    assert "serves churn's traffic" in _error(_stage(client, 1, stage="Archived"), 409)
    assert "another request" in _error(
        _stage(client, 2, stage="Production", expected_production=3), 409)
    assert "another request" in _error(
        _stage(client, 2, stage="Production", expected_production=None), 409)
    _error(_stage(client, 2, stage="Gold"), 422)
    _error(_stage(client, 9, stage="Staging"), 404)
    _error(client.post(ROUTE.format(name="nope", version=1), json={"stage": "Staging"}), 404)


def test_an_archived_version_is_never_deployed_and_the_answer_says_how_to_restore(
        client: TestClient) -> None:
    assert _stage(client, 3, stage="Archived").status_code == 200
    detail = _error(client.post("/v1/deployments/churn", json={"version": 3, "percent": 10}),
                    409)
    assert "Archived" in detail and "workbench stage churn 3 Staging" in detail
    shadow = client.post("/v1/deployments/churn", json={"version": 3, "mode": "shadow"})
    assert "workbench stage churn 3 Staging" in _error(shadow, 409)
    assert _stage(client, 3, stage="Staging").status_code == 200
    assert client.post("/v1/deployments/churn",
                       json={"version": 3, "percent": 10}).json()["candidate"] == 3


@pytest.mark.slow
def test_schemathesis_answers_match_the_declared_responses(client: TestClient) -> None:
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    op = schema["/v1/models/{name}/versions/{version}/stage"]["POST"]
    seen: set[int] = set()
    calls: list[int] = []

    @given(case=op.as_strategy())
    @settings(max_examples=40, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        calls.append(1)
        if len(calls) % 2:  # every other call reaches a real version of the real model
            case.path_parameters.update(name="churn",
                                        version=1 + case.path_parameters["version"] % 3)
        response = case.call()
        seen.add(response.status_code)
        case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                 response_schema_conformance])

    check()
    assert 200 in seen and 409 in seen and {404, 422} & seen  # moves, refusals, mistakes
