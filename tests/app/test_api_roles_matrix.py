"""THE MATRIX: every route of the API, from its own /openapi.json, against every kind of
caller (ARCHITECTURE.md "Identity"): anonymous → 401 (but the public routes), each role →
allowed (neither 401 nor 403) or 403 as app/api/roles.py says; on SQLite and PostgreSQL.

A new route is in the matrix the moment it is in the OpenAPI document. Path parameters are
filled with real objects (a deployed model, a dataset, a job, a schedule, an alert, a run) or,
where a real one would start expensive work, a placeholder whose 404 still proves the caller
got past the guard. Each column is one function taking (matrix, operation) and returning a
problem or None, registered in COLUMNS, so another column (e.g. "another workspace's object
→ 404") is one more function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from app.api import create_app
from app.api.roles import PUBLIC, needed_role
from core.deploy import deployments as dep
from core.identity import Role
from core.identity.keys import create_key
from core.identity.users import add_user
from core.jobs.schedules import create_schedule
from core.store import Alert, Database
from core.tracking.runs import create_run
from tests.factories import CANCER, register, submit

UPLOAD = ("POST", "/v1/datasets")
CSV = b"a,b,plan\n0.1,0.5,basic\n0.2,0.7,pro\n"
# Real objects would start work no test should pay for (a retraining job and its worker): a
# name that does not exist answers 404 after the guard let the caller through.
PLACEHOLDERS: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/v1/models/{name}/retrain"): {"name": "no-such-model"},
}
ROLES = (Role.VIEWER, Role.EDITOR, Role.ADMIN)


@dataclass(frozen=True)
class Op:
    method: str
    template: str
    path: str


@dataclass
class Matrix:
    client: TestClient
    params: dict[str, str]  # path parameter name → a real object's id or name
    headers: dict[str, dict[str, str]] = field(default_factory=dict)  # caller → headers

    def call(self, op: Op, caller: str | None):
        headers = dict(self.headers.get(caller or "", {}))
        if (op.method, op.template) == UPLOAD:
            return self.client.request(op.method, op.path, content=CSV,
                                       headers={**headers, "content-type": "text/csv"})
        body = {"json": {}} if op.method in ("POST", "PUT", "PATCH") else {}
        return self.client.request(op.method, op.path, headers=headers, **body)


def operations(openapi: dict, params: dict[str, str]) -> list[Op]:
    """Every (method, path) of the document, reads first and deletes last (so the objects
    stay there for the routes that need them)."""
    ops = []
    for template, item in openapi["paths"].items():
        for method in item:
            if method.upper() not in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"):
                continue
            values = {**params, **PLACEHOLDERS.get((method.upper(), template), {})}
            path = template
            for name, value in values.items():
                path = path.replace("{" + name + "}", value).replace(
                    "{" + name + ":path}", value)
            assert "{" not in path, f"no value for a parameter of {template}: add one to params"
            ops.append(Op(method.upper(), template, path))
    order = {"GET": 0, "HEAD": 0, "POST": 1, "PUT": 1, "PATCH": 1, "DELETE": 2}
    return sorted(ops, key=lambda o: order[o.method])


def _allowed_or_403(m: Matrix, op: Op, role: Role) -> str | None:
    r = m.call(op, role.value)
    needed = needed_role(op.method, op.template)
    if (op.method, op.template) in PUBLIC or role.allows(needed):
        if r.status_code in (401, 403) or r.status_code >= 500:
            return f"{role.value} {op.method} {op.template}: {r.status_code} {r.text[:160]}"
        return None
    if r.status_code != 403 or f"needs the {needed.value} role; you are {role.value}" \
            not in r.json().get("detail", ""):
        return f"{role.value} {op.method} {op.template}: expected 403, got {r.status_code}"
    return None


def anonymous(m: Matrix, op: Op) -> str | None:
    r = m.call(op, None)
    public = (op.method, op.template) in PUBLIC
    if public and r.status_code in (401, 403):
        return f"anonymous {op.method} {op.template} is public but got {r.status_code}"
    if not public and r.status_code != 401:
        return f"anonymous {op.method} {op.template}: expected 401, got {r.status_code}"
    return None


def viewer(m: Matrix, op: Op) -> str | None:
    return _allowed_or_403(m, op, Role.VIEWER)


def editor(m: Matrix, op: Op) -> str | None:
    return _allowed_or_403(m, op, Role.EDITOR)


def admin(m: Matrix, op: Op) -> str | None:
    return _allowed_or_403(m, op, Role.ADMIN)


# In this order: the callers who cannot change anything go first.
COLUMNS: dict[str, Callable[[Matrix, Op], str | None]] = {
    "anonymous": anonymous, "viewer": viewer, "editor": editor, "admin": admin}


def _objects(db: Database) -> dict[str, str]:
    """A deployed model with two versions, a dataset and a job on it, a schedule, an alert
    and a run: every kind of object a path names."""
    register()
    register(seed=1)
    with Session(db.engine, expire_on_commit=False) as s:
        dep.deploy("churn", 1, session=s)
        job = submit(s, CANCER, "diagnosis", budget=8)
        schedule = create_schedule("churn", "0 3 * * *", session=s)
        alert = Alert(model_name="churn", version=1, kind="DRIFT", feature="a", state="open")
        s.add(alert)
        s.commit()
        run = create_run(session=s, experiment="churn")
        return {"name": "churn", "version": "1", "alias": "production", "job_id": str(job.id),
                "schedule_id": str(schedule.id), "alert_id": str(alert.id),
                "run_id": str(run.id), "ref": str(job.dataset_id), "path": "no-such-file.txt"}


def _credentials(db: Database, client: TestClient) -> dict[str, dict[str, str]]:
    """Viewer and editor sign in as users (JWT); the admin is an API key."""
    with Session(db.engine, expire_on_commit=False) as s:
        for role in (Role.VIEWER, Role.EDITOR):
            add_user(role.value, "password-1", role=role, session=s)
        key = create_key("admin-key", role=Role.ADMIN, session=s).key
    headers = {Role.ADMIN.value: {"Authorization": f"Bearer {key}"}}
    for role in (Role.VIEWER, Role.EDITOR):
        r = client.post("/v1/auth/token", json={"username": role.value,
                                                "password": "password-1"})
        headers[role.value] = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return headers


@pytest.mark.slow
def test_every_route_answers_every_caller_as_the_role_table_says(
        backend_db: Database, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_PASSWORD_HASH_COST", "cheapest")
    params = _objects(backend_db)
    with TestClient(create_app(background=False, db=backend_db),
                    raise_server_exceptions=False) as client:
        matrix = Matrix(client, params, _credentials(backend_db, client))
        ops = operations(client.get("/openapi.json").json(), params)
        assert len(ops) > 60
        problems = [p for column in COLUMNS.values() for op in ops
                    if (p := column(matrix, op)) is not None]
    assert problems == []


# The contract's sentences, checked against the table independently of how it is written.
CONTRACT = [
    # viewer: reads everything and predicts
    (Role.VIEWER, "GET", "/v1/models/{name}"), (Role.VIEWER, "GET", "/v1/runs"),
    (Role.VIEWER, "POST", "/v1/models/{name}/predict"),
    (Role.VIEWER, "POST", "/v2/models/{name}/infer"), (Role.VIEWER, "POST", "/invocations"),
    # editor: uploads, trains, deploys, promotes, rolls back, moves aliases and stages, acks
    (Role.EDITOR, "POST", "/v1/datasets"), (Role.EDITOR, "POST", "/v1/jobs"),
    (Role.EDITOR, "POST", "/v1/models/{name}/retrain"),
    (Role.EDITOR, "POST", "/v1/deployments/{name}"),
    (Role.EDITOR, "POST", "/v1/deployments/{name}/promote"),
    (Role.EDITOR, "POST", "/v1/deployments/{name}/rollback"),
    (Role.EDITOR, "POST", "/v1/models/{name}/aliases/{alias}"),
    (Role.EDITOR, "POST", "/v1/models/{name}/versions/{version}/stage"),
    (Role.EDITOR, "POST", "/v1/alerts/{alert_id}/ack"),
    (Role.EDITOR, "DELETE", "/v1/datasets/{ref}"),
    # admin: users, keys and workspace settings, whatever the method
    (Role.ADMIN, "GET", "/v1/users"), (Role.ADMIN, "POST", "/v1/keys"),
    (Role.ADMIN, "DELETE", "/v1/keys/{name}"), (Role.ADMIN, "PUT", "/v1/workspaces/{ws}"),
    # a route nobody wrote an entry for gets the method's default, never nothing
    (Role.VIEWER, "GET", "/v1/some-new-report"), (Role.EDITOR, "POST", "/v1/some-new-action"),
    (Role.EDITOR, "PATCH", "/v1/some-new-thing"),
]


@pytest.mark.parametrize(("role", "method", "template"), CONTRACT,
                         ids=[f"{m} {t}" for _, m, t in CONTRACT])
def test_the_role_table_says_what_the_contract_says(role: Role, method: str,
                                                    template: str) -> None:
    assert needed_role(method, template) is role
