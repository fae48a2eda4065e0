"""Another workspace's object ids given in a request BODY, a query filter or a command's
argument answer exactly as an absent id (404 / exit 1, "no such"), never as found: a run
cannot point at another workspace's dataset, parent run, job or version, a job cannot train on
another workspace's dataset, a comparison cannot read another workspace's runs.

The walk is generated from /openapi.json: a body field that names an object (`*_id`,
`dataset`, `runs`) and is not listed below fails the test, so a new one cannot be forgotten.
(Ids in the PATH are walked by tests/app/test_api_workspaces.py.)"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner

from app.api import create_app
from app.cli import app as cli
from core.identity.workspaces import add_workspace
from core.store import Database, Dataset, Run
from core.store.scope import owned_get, scope
from tests.app.test_api_workspaces import _as, _make_keys, _objects_of

ABSENT = 2_000_000_000  # an id no test store reaches
# body field -> the key of team-a's objects (`_objects_of`) whose id it takes
ID_FIELDS = {"parent_run_id": "run_id", "dataset_id": "ref", "dataset": "ref",
             "runs": "run_id", "job_id": "job_id", "version_id": "version_id"}
NOT_OBJECT_IDS = {
    ("post", "/v1/models/{name}/feedback", "request_id"),  # a prediction's id, under {name}
    ("post", "/v2/models/{name}/infer", "id"),  # the caller's own request id, echoed
    ("post", "/v2/models/{name}/versions/{version}/infer", "id"),
}
BASE_BODIES: dict[tuple[str, str], dict[str, Any]] = {  # a valid body but for the id
    ("post", "/v1/runs"): {"experiment": "probe"},
    ("post", "/v1/runs/compare"): {},
    ("post", "/v1/jobs"): {"target": "y", "budget": 1, "n_trials": 1},
}
LISTS = {"runs": True}  # fields that take a list of ids


def _resolve(doc: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _body_id_fields(doc: dict) -> list[tuple[str, str, str]]:
    found = []
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            for content in (op.get("requestBody") or {}).get("content", {}).values():
                for prop in _resolve(doc, content["schema"]).get("properties", {}):
                    if prop.endswith("_id") or prop in ("id", "dataset", "runs"):
                        found.append((method, path, prop))
    return found


@pytest.fixture
def api(backend: str, home: Path) -> Iterator[tuple[TestClient, dict, Database]]:
    db = Database()
    try:
        with Session(db.engine) as s:
            for ws in ("team-a", "team-b"):
                add_workspace(ws, session=s)
        a = _objects_of(db, "team-a", "secret-model")
        _make_keys(db)
        with TestClient(create_app(background=False, db=db)) as client:
            yield client, a, db
    finally:
        db.dispose()


def _value(field: str, ident: Any) -> Any:
    return [ident] if LISTS.get(field) else ident


def test_another_workspaces_ids_in_bodies_answer_as_absent(api) -> None:
    client, a, _ = api
    doc = client.get("/openapi.json").json()
    fields = _body_id_fields(doc)
    unknown = [f for f in fields if f not in NOT_OBJECT_IDS and f[2] not in ID_FIELDS]
    assert unknown == []  # a new id field: add it to ID_FIELDS (and to the use case's checks)
    walked = [f for f in fields if f[2] in ID_FIELDS]
    assert len(walked) >= 4  # parent_run_id, dataset_id, runs, dataset at least
    wrong = {}
    for method, path, field in walked:
        base = BASE_BODIES[(method, path)]
        theirs = client.request(method.upper(), path, headers=_as("team-b"),
                                json={**base, field: _value(field, a[ID_FIELDS[field]])})
        absent = client.request(method.upper(), path, headers=_as("team-b"),
                                json={**base, field: _value(field, ABSENT)})
        if theirs.status_code != 404 or absent.status_code != 404 or \
                theirs.json()["error"] != absent.json()["error"]:
            wrong[f"{method} {path} {field}"] = (theirs.status_code, theirs.text[:200])
    assert wrong == {}
    # the same ids are found by their own workspace (so the 404s above are the workspace's)
    mine = client.post("/v1/runs", headers=_as("team-a"), json={
        "experiment": "probe", "parent_run_id": a["run_id"], "dataset_id": a["ref"]})
    assert mine.status_code == 201, mine.text
    assert client.post("/v1/runs/compare", headers=_as("team-a"),
                       json={"runs": [a["run_id"]]}).status_code == 200


def test_a_run_of_one_workspace_never_names_another_workspaces_objects(api) -> None:
    client, a, db = api
    for field in ("parent_run_id", "dataset_id"):
        r = client.post("/v1/runs", headers=_as("team-b"),
                        json={"experiment": "probe", field: a[ID_FIELDS[field]]})
        assert r.status_code == 404 and field in r.json()["detail"], r.text
    with Session(db.engine) as s:  # nothing was written for team-b
        assert owned_get(scope(s, "team-b"), Run, 1) is None


def test_run_listing_filters_by_another_workspaces_ids_find_nothing(api) -> None:
    client, a, _ = api
    for query in (f"parent_run_id={a['run_id']}", f"job_id={a['job_id']}"):
        r = client.get(f"/v1/runs?{query}", headers=_as("team-b"))
        assert r.status_code == 200 and r.json()["runs"] == [], r.text


def test_an_identity_map_hit_does_not_cross_workspaces(backend_db: Database) -> None:
    """`session.get` runs no SELECT for an object the session already holds: (re)scoping a
    session drops other workspaces' objects, and `owned_get` checks what it returns."""
    with scope(Session(backend_db.engine, expire_on_commit=False), "team-a") as s:
        from core.data.datasets import store_frame
        from tests.factories import training_frame

        X, y = training_frame()
        ds_id = store_frame(X.assign(y=y), session=s, name="d", fingerprint="f" * 64).dataset.id
    with Session(backend_db.engine) as s:
        held = s.get(Dataset, ds_id)  # loaded while unscoped (as an internal loop does)
        assert held is not None
        scope(s, "team-b")
        assert s.get(Dataset, ds_id) is None
        assert owned_get(s, Dataset, ds_id) is None


def test_the_cli_answers_another_workspaces_ids_as_absent(api, monkeypatch) -> None:
    _, a, _ = api
    # `--workspace` exports WORKBENCH_WORKSPACE for the processes it starts: undo it after
    monkeypatch.setenv("WORKBENCH_WORKSPACE", "default")
    runner = CliRunner()
    for command, key in ((["run"], "run_id"), (["datasets", "delete", "--yes"], "ref"),
                         (["submit", "--target", "y"], "ref")):
        said = {}
        for ident in (a[key], ABSENT):
            r = runner.invoke(cli, ["--workspace", "team-b", *command, str(ident)])
            said[ident] = (r.exit_code, re.sub(rf"\b{ident}\b", "ID", r.output))
        assert said[a[key]] == said[ABSENT] and said[ABSENT][0] != 0, said
        assert "secret-model" not in said[a[key]][1]
    mine = runner.invoke(cli, ["--workspace", "team-a", "run", str(a["run_id"]), "--json"])
    assert mine.exit_code == 0 and json.loads(mine.output)["id"] == a["run_id"]
