"""Cross-site requests cannot drive deployments (issue 12, defect 5): writing routes take only
JSON (415), the Host must be one the server answers to (400) and a browser's foreign Origin is
refused (403), while same-origin pages, scripts without an Origin and the dataset upload keep
working."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from core.deploy import deployments as dep
from tests.factories import register, store_session


@pytest.fixture
def canary(home: Path) -> str:
    """churn: version 1 stable, version 2 a 10 % candidate, version 3 registered only."""
    for seed in (0, 1, 2):
        register(seed=seed)
    with store_session() as _s:
        dep.deploy("churn", 1, session=_s)
    with store_session() as _s:
        dep.deploy("churn", 2, 10, session=_s)
    return "churn"


@pytest.fixture
def client(canary: str) -> Iterator[TestClient]:
    with TestClient(create_app(background=False)) as c:
        yield c


def _deployment() -> dict[str, Any]:
    with store_session() as s:
        return {"state": dep.get_state("churn", session=s).to_dict(),
                "history": dep.history("churn", session=s)}


def _refused(resp: Any, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "detail"} and body["error"] == code
    return body["detail"]


WRITES = [("/v1/deployments/churn", '{"version": 3, "percent": 50}'),
          ("/v1/deployments/churn/promote", '{"reason": "csrf"}'),
          ("/v1/deployments/churn/rollback", '{"reason": "csrf"}')]


@pytest.mark.parametrize("path,body", WRITES)
def test_a_cross_site_form_or_text_post_changes_no_deployment(client: TestClient, path: str,
                                                               body: str) -> None:
    """What a web page can send without a CORS preflight: text/plain, a urlencoded or a
    multipart form (empty or not), or a body with no type at all."""
    before = _deployment()
    attempts = [
        {"content": body, "headers": {"content-type": "text/plain"}},
        {"content": body, "headers": {"content-type": "text/plain;charset=UTF-8"}},
        {"content": "", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        {"data": {"reason": "csrf", "version": "3"}},
        {"files": {"reason": ("r.txt", b"csrf", "text/plain")}},
        {"content": body.encode()},  # no Content-Type header at all
    ]
    for kwargs in attempts:
        detail = _refused(client.post(path, **kwargs), 415, "unsupported_media_type")
        assert "application/json" in detail
    assert _deployment() == before
    # the same call as JSON is what the API is for
    ok = client.post(path, content=body, headers={"content-type": "application/json"})
    assert ok.status_code == 200, ok.text
    assert _deployment() != before


def test_body_less_writes_without_a_type_still_work(client: TestClient) -> None:
    """`curl -X POST .../promote` sends no body and no Content-Type: nothing to misread."""
    out = client.post("/v1/deployments/churn/promote").json()
    assert (out["stable"], out["candidate"]) == (2, None)


def test_the_dataset_upload_takes_tables_not_text(client: TestClient) -> None:
    csv = b"a,b\n1,2\n3,4\n"
    assert client.post("/v1/datasets?name=t", content=csv,
                       headers={"content-type": "text/csv; charset=utf-8"}).status_code == 201
    assert client.post("/v1/datasets", files={"file": ("t.csv", csv, "text/csv")}
                       ).status_code == 200
    assert client.post("/v1/datasets", content=csv,
                       headers={"content-type": "application/octet-stream"}).status_code == 200
    detail = _refused(client.post("/v1/datasets?name=u", content=csv,
                                  headers={"content-type": "text/plain"}),
                      415, "unsupported_media_type")
    assert "text/csv" in detail and "multipart/form-data" in detail
    assert [d["name"] for d in client.get("/v1/datasets").json()] == ["t"]


def test_a_foreign_origin_is_refused_and_the_own_origin_is_not(client: TestClient) -> None:
    before = _deployment()
    for origin in ("https://evil.example", "http://testserver.evil.example", "null",
                   "http://testserver:8080", "http://localhost:8501"):
        resp = client.post("/v1/deployments/churn/promote", json={"reason": "x"},
                           headers={"origin": origin})
        assert origin in _refused(resp, 403, "foreign_origin")
    assert _deployment() == before
    # reading is not refused: without CORS headers the browser keeps the answer from the page
    assert client.get("/v1/models", headers={"origin": "https://evil.example"}).status_code \
        == 200
    # the server's own origin (a page it served) and callers with no Origin (scripts) pass
    assert client.post("/v1/deployments/churn/rollback", json={},
                       headers={"origin": "http://testserver"}).json()["candidate"] is None
    assert client.post("/v1/deployments/churn", json={"version": 2}).status_code == 200


def test_allowed_origins_let_a_named_browser_app_in(canary: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_ALLOWED_ORIGINS", "http://localhost:8501, https://ops.example")
    with TestClient(create_app(background=False)) as c:
        r = c.post("/v1/deployments/churn/promote", json={},
                   headers={"origin": "http://localhost:8501"})
        assert r.status_code == 200 and r.json()["stable"] == 2
        _refused(c.post("/v1/deployments/churn/rollback", json={},
                        headers={"origin": "http://localhost:8502"}), 403, "foreign_origin")


def test_a_foreign_host_is_refused(client: TestClient) -> None:
    """DNS rebinding: the attacker's name now points at 127.0.0.1, so the browser calls the
    page same-origin, but the Host header still carries the attacker's name."""
    before = _deployment()
    detail = _refused(client.post("/v1/deployments/churn/promote", json={},
                                  headers={"host": "rebind.evil.example"}), 400, "bad_host")
    assert "WORKBENCH_ALLOWED_HOSTS" in detail
    _refused(client.get("/v1/models", headers={"host": "rebind.evil.example:8001"}),
             400, "bad_host")
    assert _deployment() == before
    # a load balancer's probe by IP address still gets its answer from /health
    assert client.get("/health", headers={"host": "10.0.0.7:8001"}).status_code == 200


def test_the_default_hosts_are_the_bind_address_and_localhost(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORKBENCH_ALLOWED_HOSTS")
    monkeypatch.setenv("WORKBENCH_BIND_HOST", "10.1.2.3")
    app = create_app(background=False)
    for base in ("http://127.0.0.1:8001", "http://localhost:8001", "http://[::1]:8001",
                 "http://10.1.2.3:8001", "http://LOCALHOST."):
        with TestClient(app, base_url=base) as c:
            assert c.get("/v1/models").status_code == 200, base
    for base in ("http://testserver", "http://10.1.2.4:8001", "http://localhost.evil.example"):
        with TestClient(app, base_url=base) as c:
            _refused(c.get("/v1/models"), 400, "bad_host")
    monkeypatch.setenv("WORKBENCH_ALLOWED_HOSTS", "*.corp.example, api.example")
    app = create_app(background=False)
    for base, status in (("http://ml.corp.example", 200), ("http://api.example:8001", 200),
                         ("http://corp.example.evil", 400), ("http://127.0.0.1", 200)):
        with TestClient(app, base_url=base) as c:
            assert c.get("/v1/models").status_code == status, base


def test_openapi_documents_the_refusals(home: Path) -> None:
    promote = create_app(background=False).openapi()["paths"][
        "/v1/deployments/{name}/promote"]["post"]["responses"]
    assert {"400", "403", "415"} <= set(promote)
