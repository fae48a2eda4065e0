"""Signing in to the API and what each kind of credential gets (ARCHITECTURE.md "Identity"):
single-user mode until a user or key exists, then 401 without credentials, users by JWT, machines
by API key, WORKBENCH_API_TOKEN as an admin; removed users and changed roles lose their tokens
at once; 403 names the role needed; the audit log names the real actor."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from app.api import create_app
from core.deploy import deployments as dep
from core.identity import PrincipalKind
from core.identity.keys import create_key, revoke_key
from core.identity.tokens import issue
from core.identity.users import add_user, remove_user, revision_of, set_password, set_role
from core.identity.workspaces import add_workspace
from core.store import AuditEvent
from tests.factories import built_home, copy_home, record, register, store_session

PUBLIC = [("GET", "/health"), ("GET", "/v2/health/live"), ("GET", "/v2/health/ready"),
          ("GET", "/openapi.json"), ("GET", "/docs")]


@pytest.fixture(scope="module")
def churn_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """churn 1 (deployed) and 2: built once, copied per test."""
    with built_home(tmp_path_factory, "auth_churn") as path:
        register()
        register(seed=1)
        with store_session() as s:
            dep.deploy("churn", 1, session=s)
    return path


@pytest.fixture
def client(churn_home: Path, home: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("WORKBENCH_PASSWORD_HASH_COST", "cheapest")
    copy_home(churn_home, home)
    with TestClient(create_app(background=False)) as c:
        yield c


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _sign_in(c: TestClient, name: str, password: str = "password-1") -> dict[str, str]:
    r = c.post("/v1/auth/token", json={"username": name, "password": password})
    assert r.status_code == 200, r.text
    return _bearer(r.json()["access_token"])


def _add(name: str, role: str, workspace: str = "default") -> None:
    with store_session() as s:
        if workspace != "default":
            add_workspace(workspace, session=s)
        add_user(name, "password-1", role=role, workspace=workspace, session=s)


def _error(r, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    assert r.json()["error"] == code
    return r.json()["detail"]


def test_without_users_keys_or_token_the_caller_is_the_local_operator(
        client: TestClient) -> None:
    me = client.get("/v1/auth/me").json()
    assert me["kind"] == "local" and me["role"] == "admin" and me["workspace"] == "default"
    assert client.post("/v1/models/churn/predict", json={"records": [record()]}
                       ).status_code == 200
    # a stray header changes nothing in single-user mode
    assert client.get("/v1/models", headers=_bearer("whatever")).status_code == 200


def test_once_a_user_exists_anonymous_calls_are_401_but_public_routes_stay_open(
        client: TestClient) -> None:
    _add("ann", "viewer")
    for path in ("/v1/models", "/v1/auth/me", "/metrics"):
        detail = _error(client.get(path), 401, "unauthorized")
        assert "POST /v1/auth/token" in detail
    assert client.get("/v1/models").headers["WWW-Authenticate"] == "Bearer"
    _error(client.post("/v1/models/churn/predict", json={"records": [record()]}), 401,
           "unauthorized")
    for method, path in PUBLIC:
        assert client.request(method, path).status_code == 200, path


def test_sign_in_issues_a_bearer_token_and_never_says_which_part_was_wrong(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    _add("ann", "editor", workspace="team-a")
    r = client.post("/v1/auth/token", json={"username": "ann", "password": "password-1"})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 8 * 3600
    me = client.get("/v1/auth/me", headers=_bearer(body["access_token"])).json()
    assert me == {"actor": "ann", "role": "editor", "workspace": "team-a", "kind": "user"}
    wrong_password = client.post("/v1/auth/token", json={"username": "ann",
                                                         "password": "password-2"})
    no_such_user = client.post("/v1/auth/token", json={"username": "bob",
                                                       "password": "password-1"})
    assert wrong_password.status_code == no_such_user.status_code == 401
    assert wrong_password.json() == no_such_user.json()
    assert _error(client.post("/v1/auth/token", json={"username": "ann"}), 422,
                  "invalid_request")


def test_an_expired_or_forged_token_is_401(client: TestClient) -> None:
    _add("ann", "viewer")
    with store_session() as s:
        rev = revision_of(s, "ann")
    ann = client.get("/v1/auth/me", headers=_sign_in(client, "ann")).json()
    from core.identity import Principal, Role

    who = Principal(actor=ann["actor"], role=Role.VIEWER, kind=PrincipalKind.USER)
    expired = issue(who, rev, now=int(time.time()) - 9 * 3600).access_token
    assert "expired" in _error(client.get("/v1/models", headers=_bearer(expired)), 401,
                               "unauthorized")
    _error(client.get("/v1/models", headers=_bearer(expired[:-2] + "xx")), 401, "unauthorized")
    _error(client.get("/v1/models", headers={"Authorization": "Basic YW5uOnB3"}), 401,
           "unauthorized")


def test_removing_a_user_or_changing_their_role_or_password_ends_their_tokens_at_once(
        client: TestClient) -> None:
    for name in ("ann", "bob", "cid"):
        _add(name, "editor")
    tokens = {name: _sign_in(client, name) for name in ("ann", "bob", "cid")}
    assert all(client.get("/v1/models", headers=t).status_code == 200
               for t in tokens.values())
    with store_session() as s:
        remove_user("ann", session=s)
        set_role("bob", "viewer", session=s)
        set_password("cid", "password-2", session=s)
    for name, headers in tokens.items():
        assert "sign in again" in _error(client.get("/v1/models", headers=headers), 401,
                                         "unauthorized"), name
    bob = client.get("/v1/auth/me", headers=_sign_in(client, "bob")).json()
    assert bob["role"] == "viewer"


def test_api_keys_work_until_revoked(client: TestClient) -> None:
    with store_session() as s:
        # the workspace `churn` lives in (another workspace's key would get a 404 there)
        key = create_key("ci", role="viewer", workspace="default", session=s).key
    me = client.get("/v1/auth/me", headers=_bearer(key)).json()
    assert me == {"actor": "ci", "role": "viewer", "workspace": "default", "kind": "key"}
    assert client.post("/v1/models/churn/predict", json={"records": [record()]},
                       headers=_bearer(key)).status_code == 200
    with store_session() as s:
        revoke_key("ci", session=s)
    assert "revoked" in _error(client.get("/v1/models", headers=_bearer(key)), 401,
                               "unauthorized")
    # revoking the last key does not open the server to everyone: sign-in stays required
    _error(client.get("/v1/models"), 401, "unauthorized")


def test_the_api_token_is_an_admin_named_api_token(client: TestClient,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_API_TOKEN", "s3cret-token")
    with TestClient(create_app(background=False)) as c:
        _error(c.get("/v1/models"), 401, "unauthorized")
        me = c.get("/v1/auth/me", headers=_bearer("s3cret-token")).json()
        assert me == {"actor": "api-token", "role": "admin", "workspace": "default",
                      "kind": "token"}
        # the scheme is case-insensitive (RFC 7235); another scheme is no credential
        assert c.get("/v1/auth/me", headers={"Authorization": "BEARER s3cret-token"}
                     ).json()["actor"] == "api-token"
        _error(c.get("/v1/models", headers={"Authorization": "Basic s3cret-token"}), 401,
               "unauthorized")
        assert c.get("/health").status_code == 200


def test_roles_decide_and_403_names_the_role_needed(client: TestClient) -> None:
    _add("vic", "viewer")
    _add("eve", "editor")
    viewer, editor = _sign_in(client, "vic"), _sign_in(client, "eve")
    # a viewer reads and predicts, and may not deploy
    assert client.get("/v1/models", headers=viewer).status_code == 200
    assert client.post("/v1/models/churn/predict", json={"records": [record()]},
                       headers=viewer).status_code == 200
    detail = _error(client.post("/v1/deployments/churn", json={"version": 2},
                                headers=viewer), 403, "forbidden")
    assert "needs the editor role; you are viewer" in detail
    # an editor deploys; the audit log names them, not "api"
    assert client.post("/v1/deployments/churn", json={"version": 2, "reason": "better"},
                       headers=editor).status_code == 200
    with store_session() as s:
        last = s.exec(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    assert last is not None and last.actor == "eve"
