"""Another workspace's objects do not exist for the caller (404, never 403) on every route that
takes an object's id or name, the matrix generated from /openapi.json so a new route cannot be
forgotten; and two workspaces each serving a model "churn", driven at once, never cross.

Each workspace calls with its own real API key (`workbench keys create --workspace WS`)."""

from __future__ import annotations

import collections
import json
import random
import re
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from app.api import create_app
from core.data.datasets import store_frame
from core.deploy import deployments as dep
from core.identity import Role
from core.identity.keys import create_key
from core.identity.workspaces import add_workspace, list_workspaces
from core.jobs.schedules import create_schedule
from core.monitor.alerts import set_config
from core.store import Alert, AuditEvent, Database, PredictionLog, ServingStat, utcnow
from core.store.scope import scope
from core.tracking.runs import create_run
from core.usecases.alert_actions import monitor_pass
from core.usecases.retraining import fire_due
from tests.factories import NUMERIC_SCHEMA, register_numeric, training_frame

_KEYS: dict[str, str] = {}  # workspace -> its admin API key (made per test)


def _make_keys(db: Database) -> None:
    """A real admin API key per workspace (core.identity.keys): the guard resolves the
    caller's workspace from it, as for any machine calling the API."""
    _KEYS.clear()
    with Session(db.engine, expire_on_commit=False) as s:
        known = {w.name for w in list_workspaces(session=s)}
        for ws in ("team-a", "team-b"):
            if ws not in known:  # keys belong to existing workspaces only
                add_workspace(ws, session=s)
            _KEYS[ws] = create_key(f"{ws}-admin", role=Role.ADMIN, workspace=ws,
                                   session=s).key


def _as(ws: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {_KEYS[ws]}"}


def _scoped(db: Database, ws: str) -> Session:
    return scope(Session(db.engine, expire_on_commit=False), ws)


def _objects_of(db: Database, ws: str, name: str) -> dict[str, Any]:
    """A model (two versions, v1 deployed), a dataset, a queued job, a schedule, an alert,
    a monitor config and a run, all in workspace `ws`."""
    with _scoped(db, ws) as s:
        register_numeric(s, name)
        register_numeric(s, name, seed=1)
        dep.deploy(name, 1, percent=100, session=s)
        X, y = training_frame()
        frame = X.assign(y=y)
        ds = store_frame(frame, session=s, name=f"{name}-data", fingerprint="e" * 64).dataset
        from tests.factories import submit

        job = submit(s, ds.id, "y", name=name)
        sched = create_schedule(name, "02:00", session=s)
        set_config(name, session=s)
        alert = Alert(model_name=name, version=1, kind="ERROR", state="open")
        s.add(alert)
        s.commit()
        run = create_run(session=s, experiment=name)
        return {"name": name, "version": "1", "job_id": job.id, "schedule_id": sched.id,
                "alert_id": alert.id, "run_id": run.id, "ref": ds.id,
                "alias": "challenger", "path": "model.txt"}


RECORD = {"a": 0.1, "b": 0.2}
BODIES: dict[tuple[str, str], Any] = {  # a valid body per route that needs one
    ("post", "/v1/models/{name}/predict"): {"records": [RECORD]},
    ("post", "/v1/models/{name}/invocations"): {"dataframe_records": [RECORD]},
    ("post", "/v1/models/{name}/feedback"): {"request_id": "r1", "actual": ["yes"]},
    ("post", "/v2/models/{name}/infer"): {"inputs": [
        {"name": "a", "shape": [1], "datatype": "FP64", "data": [0.1]},
        {"name": "b", "shape": [1], "datatype": "FP64", "data": [0.2]}]},
    ("post", "/v1/models/{name}/evaluate"): {"records": [{**RECORD, "y": "yes"}]},
    ("post", "/v1/deployments/{name}"): {"version": 1, "percent": 10},
    ("post", "/v1/models/{name}/drift"): {"records": [RECORD]},
    ("post", "/v1/models/{name}/monitor/config"): {},
    ("post", "/v1/models/{name}/versions/{version}/stage"): {"stage": "Staging"},
    ("post", "/v1/models/{name}/aliases/{alias}"): {"version": 1},
    ("post", "/v1/deployments/{name}/percent"): {"percent": 20},
    ("post", "/v1/runs/{run_id}/log"): {"params": {"p": 1}},
}
BODIES[("post", "/v2/models/{name}/versions/{version}/infer")] = \
    BODIES[("post", "/v2/models/{name}/infer")]


def _object_routes(doc: dict) -> list[tuple[str, str]]:
    return [(method, path) for path, ops in doc["paths"].items() if "{" in path
            for method in ops]


@pytest.fixture
def two_workspaces(backend: str, home: Path) -> Iterator[tuple[TestClient, dict, Database]]:
    db = Database()
    try:
        a = _objects_of(db, "team-a", "secret-model")
        _make_keys(db)
        with TestClient(create_app(background=False, db=db)) as client:
            yield client, a, db
    finally:
        db.dispose()


def test_another_workspaces_objects_are_404_on_every_route(two_workspaces) -> None:
    client, a, _ = two_workspaces
    doc = client.get("/openapi.json").json()
    routes = _object_routes(doc)
    assert len(routes) >= 40  # the matrix really is generated from the document
    wrong = {}
    for method, path in routes:
        url = re.sub(r"\{(\w+)\}", lambda m: str(a[m.group(1)]), path)
        body = BODIES.get((method, path))
        r = client.request(method.upper(), url, json=body, headers=_as("team-b"))
        if r.status_code != 404:
            wrong[f"{method.upper()} {path}"] = (r.status_code, r.text[:200])
    assert wrong == {}
    # the same calls as the owner find the objects (so the 404s above are the workspace's)
    own = client.get(f"/v1/models/{a['name']}", headers=_as("team-a"))
    assert own.status_code == 200
    assert client.get(f"/v1/jobs/{a['job_id']}", headers=_as("team-a")).status_code == 200


def test_listings_of_another_workspace_show_nothing_of_it(two_workspaces) -> None:
    client, a, _ = two_workspaces
    doc = client.get("/openapi.json").json()
    lists = [p for p, ops in doc["paths"].items() if "{" not in p and "get" in ops
             and p.startswith("/v1/") and p not in ("/v1/metrics",)]
    leaked = {}
    for path in lists:
        r = client.get(path, headers=_as("team-b"))
        if "secret-model" in r.text:
            leaked[path] = r.text[:200]
    assert leaked == {}
    assert "secret-model" in client.get("/v1/models", headers=_as("team-a")).text


def test_metrics_show_a_workspace_its_own_series_only(two_workspaces) -> None:
    client, a, _ = two_workspaces
    r = client.post(f"/v1/models/{a['name']}/predict", json={"records": [RECORD]},
                    headers=_as("team-a"))
    assert r.status_code == 200, r.text
    assert 'model="team-a/secret-model"' in client.get("/metrics", headers=_as("team-a")).text
    theirs = client.get("/metrics", headers=_as("team-b"))
    assert theirs.status_code == 200 and "secret-model" not in theirs.text
    assert "# TYPE" in theirs.text  # the families stay, only other workspaces' series go


def _serve_churn(db: Database, ws: str, seed: int, max_p99_ms: float) -> int:
    """`churn` in `ws`: v1 stable, v2 a 50 % canary (the two workspaces' pipelines differ),
    its own latency rule, a daily schedule (returned)."""
    with _scoped(db, ws) as s:
        register_numeric(s, "churn", seed=seed)
        register_numeric(s, "churn", seed=seed + 1)
        dep.deploy("churn", 1, percent=100, session=s)
        dep.deploy("churn", 2, percent=50, session=s)
        set_config("churn", session=s, max_p99_ms=max_p99_ms, min_requests=1, consecutive=1)
        return create_schedule("churn", "02:00", session=s).id


ROUNDS = 20  # interleavings of the two workspaces' requests, each in another random order


def _drive_interleaved(client: TestClient) -> dict[str, list[dict]]:
    """ROUNDS rounds; in each, both workspaces' three requests (one of them with a bad record
    every fifth round) shuffled into one queue that two threads drain at once, so the order
    in which the workspaces' calls meet differs from round to round (seeded: repeatable)."""
    answers: dict[str, list[dict]] = {"team-a": [], "team-b": []}
    for rnd in range(ROUNDS):
        order = [(ws, k) for ws in answers for k in range(3)]
        random.Random(rnd).shuffle(order)
        queue = collections.deque(order)

        def drain(rnd: int = rnd, queue: collections.deque = queue) -> None:
            while True:
                try:
                    ws, k = queue.popleft()
                except IndexError:
                    return
                records = [{"a": k / 10, "b": 0.5}]
                if rnd % 5 == 4 and k == 2:
                    records.append({"a": "bad", "b": 1})
                r = client.post("/v1/models/churn/predict", json={"records": records},
                                headers={**_as(ws), "x-request-key": f"{ws}-{rnd}-{k}"})
                answers[ws].append({"status": r.status_code, "record": k, **r.json()})

        threads = [threading.Thread(target=drain) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    return answers


def test_two_workspaces_serving_churn_at_once_never_cross(backend: str, home: Path) -> None:
    db = Database()
    try:
        scheds = {"team-a": _serve_churn(db, "team-a", 0, max_p99_ms=0.0001),
                  "team-b": _serve_churn(db, "team-b", 10, max_p99_ms=1e9)}
        _make_keys(db)
        with TestClient(create_app(background=False, db=db)) as client:
            answers = _drive_interleaved(client)
            serving = client.app.state.serving
            serving.flush()
            for ws in answers:
                ok = [x for x in answers[ws] if x["status"] == 200]
                assert len(ok) == ROUNDS * 3 - ROUNDS // 5 and {x["version"] for x in ok} \
                    <= {1, 2}
                # the canary split of each workspace's rule (50 %): both versions answered
                assert {x["version"] for x in ok} == {1, 2}
                dep_b = client.get("/v1/deployments/churn", headers=_as(ws)).json()
                assert (dep_b["stable"], dep_b["candidate"]) == (1, 2)
            # each (workspace, version, record) answered with one set of probabilities in
            # every round, and the two workspaces' models answer differently: an answer
            # computed by the other workspace's model would show up as a second set
            seen: dict[tuple, set] = {}
            for ws in answers:
                for x in answers[ws]:
                    if x["status"] == 200:
                        key = (ws, x["version"], x["record"])
                        seen.setdefault(key, set()).add(json.dumps(x["probabilities"]))
            assert all(len(v) == 1 for v in seen.values()), seen
            assert any(seen[("team-a", v, k)] != seen[("team-b", v, k)] for v in (1, 2)
                       for k in range(3) if ("team-a", v, k) in seen
                       and ("team-b", v, k) in seen)
            # every logged prediction and counter is in its own workspace, none elsewhere
            with Session(db.engine) as s:
                logs = s.exec(select(PredictionLog.workspace, PredictionLog.request_id)).all()
                stats = s.exec(select(ServingStat.workspace, ServingStat.count)).all()
            ids = {ws: {x["request_id"] for x in answers[ws] if x["status"] == 200}
                   for ws in answers}
            for ws in answers:
                assert {rid for w, rid in logs if w == ws} == ids[ws]
                # every request counted; a rejected one may be counted twice (candidate, then
                # stable)
                n = ROUNDS * 3
                assert n <= sum(c for w, c in stats if w == ws) <= n + ROUNDS // 5
            # a label fed back in one workspace is not found in the other
            rid = next(iter(ids["team-a"]))
            fed = client.post("/v1/models/churn/feedback", headers=_as("team-b"),
                              json={"request_id": rid, "actual": ["yes"]})
            assert fed.status_code == 404
        # monitoring: team-a's latency rule fires on team-a's traffic only; team-b's (which
        # nothing can breach) on nothing, though both models are named churn
        monitor_pass(db, now=utcnow() + timedelta(seconds=1))
        with Session(db.engine) as s:
            alerts = s.exec(select(Alert.workspace, Alert.model_name, Alert.kind)).all()
        assert {(w, k) for w, _, k in alerts} == {("team-a", "LATENCY")}
        # schedules: each due schedule acts in its own workspace (its retrain is refused,
        # these models were never trained on a stored dataset, and says so there)
        fire_due(db, now=utcnow() + timedelta(days=2))
        with Session(db.engine) as s:
            said = s.exec(select(AuditEvent.workspace, AuditEvent.entity)
                          .where(AuditEvent.action.startswith("schedule."),
                                 AuditEvent.action != "schedule.create")).all()
        assert sorted(said) == sorted((ws, f"schedule:{i}") for ws, i in scheds.items())
    finally:
        db.dispose()


def test_prediction_routes_pay_no_query_for_the_workspace(home: Path) -> None:
    """The workspace view is made once per workspace and kept: the hot path's cost is one
    dict lookup."""
    app = create_app(background=False)
    serving = app.state.serving
    assert serving.view("team-a") is serving.view("team-a")
    assert serving.view("team-a") is not serving.view("team-b")
    assert NUMERIC_SCHEMA  # (the factories' model serves these columns)
    _ = pd  # pandas imported for the frame builders above
