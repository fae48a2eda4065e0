"""GET /v1/audit and `workbench audit`: the same entries newest first, with filters, a 4xx
that says what to write, and no route anywhere that edits or deletes an entry."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.api import create_app
from app.cli import app
from core.deploy import deployments as dep
from tests.factories import built_home, copy_home, register, store_session

runner = CliRunner()


@pytest.fixture(scope="module")
def audited_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """churn 1 released by alice, 2 as a 10 % canary by bob: built once, copied per test."""
    with built_home(tmp_path_factory, "audit") as path:
        register()
        register(seed=1)
        with store_session() as s:
            dep.deploy("churn", 1, session=s, actor="alice", reason="first release")
            dep.deploy("churn", 2, percent=10, session=s, actor="bob", reason="try v2")
    return path


@pytest.fixture
def client(audited_home: Path, home: Path) -> Iterator[TestClient]:
    copy_home(audited_home, home)
    with TestClient(create_app(background=False)) as c:
        yield c


def test_the_api_lists_changes_newest_first_with_who_and_why(client: TestClient) -> None:
    resp = client.get("/v1/audit", params={"entity": "model:churn", "action": "deployment"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["total"] == 2
    newest, oldest = body["entries"]
    assert (newest["actor"], newest["action"], newest["reason"]) == (
        "bob", "deployment.candidate", "try v2")
    assert newest["detail"]["version"] == 2 and newest["detail"]["percent"] == 10
    assert (oldest["actor"], oldest["action"]) == ("alice", "deployment.initial")
    everything = client.get("/v1/audit").json()
    assert {"version.register", "model.create"} <= {e["action"] for e in everything["entries"]}
    alice = client.get("/v1/audit", params={"actor": "alice"}).json()["entries"]
    assert {e["action"] for e in alice} == {"deployment.initial", "alias.move"}
    assert client.get("/v1/audit", params={"since": "1h"}).json()["total"] == everything["total"]
    assert client.get("/v1/audit", params={"until": "2000-01-01"}).json()["total"] == 0
    page = client.get("/v1/audit", params={"limit": 1, "offset": 1}).json()
    assert page["entries"] == everything["entries"][1:2]


def test_bad_filters_are_4xx_saying_what_to_write(client: TestClient) -> None:
    resp = client.get("/v1/audit", params={"action": "deploy"})
    assert resp.status_code == 400
    assert "deployment" in resp.json()["detail"]
    resp = client.get("/v1/audit", params={"since": "last tuesday"})
    assert resp.status_code == 400 and "24h" in resp.json()["detail"]
    assert client.get("/v1/audit", params={"limit": 0}).status_code == 422


def test_no_route_edits_or_deletes_the_audit_log(client: TestClient) -> None:
    """Append-only at the API: the only audit path is a GET; no path anywhere lets a caller
    write to it (the store's triggers cover everything else)."""
    paths = client.get("/openapi.json").json()["paths"]
    audit = {p: set(ops) for p, ops in paths.items() if "audit" in p}
    assert audit == {"/v1/audit": {"get"}}
    for method in ("post", "put", "patch", "delete"):
        assert getattr(client, method)("/v1/audit").status_code == 405


def test_the_cli_shows_the_same_entries(client: TestClient) -> None:
    result = runner.invoke(app, ["audit", "--entity", "model:churn", "--action", "deployment",
                                 "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == client.get(
        "/v1/audit", params={"entity": "model:churn", "action": "deployment"}).json()
    plain = runner.invoke(app, ["audit", "--actor", "bob"])
    assert plain.exit_code == 0, plain.output
    text = " ".join(plain.stdout.split())
    assert "deployed a candidate" in text and "try v2" in text and "churn" in text
    bad = runner.invoke(app, ["audit", "--since", "soon"])
    assert bad.exit_code == 2 and "24h" in bad.stderr
    empty = runner.invoke(app, ["audit", "--actor", "nobody"])
    assert empty.exit_code == 0 and "No audit entries match" in empty.stdout


def test_generated_queries_get_what_the_schema_declares(client: TestClient) -> None:
    """Schemathesis over GET /v1/audit: any query answers 200 or a declared 4xx, in the
    declared shape, never a 500."""
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        response_schema_conformance,
        status_code_conformance,
    )

    op = schemathesis.openapi.from_asgi("/openapi.json", client.app)["/v1/audit"]["GET"]
    seen: set[int] = set()

    @given(case=op.as_strategy())
    @settings(max_examples=30, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def check(case) -> None:
        response = case.call()
        seen.add(response.status_code)
        case.validate_response(response, checks=[not_a_server_error, status_code_conformance,
                                                 response_schema_conformance])

    check()
    assert 200 in seen
