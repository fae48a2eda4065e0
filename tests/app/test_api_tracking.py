"""Tracking over REST and the CLI, on SQLite and PostgreSQL: experiments, starting, logging to,
ending and comparing runs, the listing's filters and pages, artifact downloads, and every
path that would leave a run's artifact root answered 404 — sent as raw bytes, exactly as a
server hands them to the app, so no client normalises them first."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote

import anyio
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import core.tracking as tracking
from app.api import create_app
from app.cli import app as cli
from core.store import Database

runner = CliRunner()


@pytest.fixture
def client(backend: str):
    app = create_app(background=False)
    with TestClient(app) as c:
        yield c


def _error(response, status: int, code: str, *words: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == code, body
    for word in words:
        assert word in body["detail"], body


def test_a_run_is_started_logged_to_read_and_ended_over_rest(client: TestClient) -> None:
    assert client.post("/v1/experiments", json={"name": "churn"}).status_code == 201
    _error(client.post("/v1/experiments", json={"name": "churn"}), 409, "conflict", "exists")
    started = client.post("/v1/runs", json={"experiment": "churn", "name": "baseline",
                                            "params": {"max_depth": 3}, "tags": {"t": "a"}})
    assert started.status_code == 201, started.text
    run = started.json()
    assert (run["status"], run["experiment"], run["params"]) == ("RUNNING", "churn",
                                                                 {"max_depth": "3"})
    rid = run["id"]
    logged = client.post(f"/v1/runs/{rid}/log", json={
        "params": {"lr": 0.1},
        "metrics": [{"key": "loss", "value": 0.9, "step": 0},
                    {"key": "loss", "value": 0.4, "step": 1},
                    {"key": "loss", "value": 0.3}],
        "tags": {"t": "b"}})
    assert logged.status_code == 200, logged.text
    got = client.get(f"/v1/runs/{rid}").json()
    assert [(p["step"], p["value"]) for p in got["metric_history"]["loss"]] == [
        (0, 0.9), (1, 0.4), (2, 0.3)]
    assert got["metrics"] == {"loss": 0.3} and got["tags"] == {"t": "b"}
    assert got["params"] == {"lr": "0.1", "max_depth": "3"}
    ended = client.post(f"/v1/runs/{rid}/end", json={"status": "FINISHED"})
    assert ended.status_code == 200 and ended.json()["status"] == "FINISHED"
    _error(client.post(f"/v1/runs/{rid}/log", json={"tags": {"x": "y"}}), 409, "conflict",
           "FINISHED", "Start a new run")
    _error(client.post(f"/v1/runs/{rid}/end", json={}), 409, "conflict", "ended already")
    # a run in a new experiment: the experiment is created on first use
    other = client.post("/v1/runs", json={"experiment": "fresh"}).json()
    assert client.post(f"/v1/runs/{other['id']}/end").json()["status"] == "FINISHED"
    names = {e["name"]: e["runs"] for e in client.get("/v1/experiments").json()}
    assert names == {"churn": 1, "fresh": 1}


def test_bad_input_is_422_naming_the_field_and_unknown_things_404(client: TestClient) -> None:
    rid = client.post("/v1/runs", json={"experiment": "x"}).json()["id"]
    for body, words in [
        ({"metrics": [{"key": "loss", "value": "high"}]}, ["metrics.0.value"]),
        ({"metrics": [{"key": "loss", "value": 1, "step": -1}]}, ["metrics.0.step"]),
        ({"params": {"a=b": 1}}, ["params: 'a=b' is not a valid name"]),
        ({"params": {"x": "v" * 6001}}, ["params.x"]),
        ({"tags": {"": "v"}}, ["tags: ''"]),
    ]:
        _error(client.post(f"/v1/runs/{rid}/log", json=body), 422, "invalid_request", *words)
    client.post(f"/v1/runs/{rid}/log", json={"params": {"p": 1}})
    _error(client.post(f"/v1/runs/{rid}/log", json={"params": {"p": 2}}), 409, "conflict",
           "p: logged '1', now '2'")
    _error(client.post(f"/v1/runs/{rid}/end", json={"status": "DONE"}), 422,
           "invalid_request", "status")
    _error(client.post(f"/v1/runs/{rid}/end", json={"status": "RUNNING"}), 422,
           "invalid_request", "status")
    _error(client.post("/v1/runs", json={"experiment": ""}), 422, "invalid_request",
           "experiment")
    _error(client.post("/v1/runs", json={"experiment": "x", "parent_run_id": 999}), 404,
           "not_found", "parent_run_id")
    _error(client.get("/v1/runs/999"), 404, "not_found", "No run 999")
    _error(client.post("/v1/runs/999/log", json={}), 404, "not_found")
    _error(client.post("/v1/runs/999/end"), 404, "not_found")
    _error(client.get("/v1/runs/999/artifacts"), 404, "not_found")
    _error(client.get("/v1/runs/999/artifacts/a.txt"), 404, "not_found")
    _error(client.get("/v1/experiments/nope/runs"), 404, "not_found", "nope")
    _error(client.post("/v1/runs/compare", json={"runs": [rid, 999]}), 404, "not_found",
           "999")
    _error(client.post("/v1/runs/compare", json={"runs": []}), 422, "invalid_request", "runs")
    _error(client.get("/v1/runs", params={"filter": "roc_auc>1"}), 422, "invalid_request",
           "filter")
    _error(client.get("/v1/runs", params={"sort": "colour"}), 422, "invalid_request", "sort")
    _error(client.get("/v1/runs", params={"limit": 0}), 422, "invalid_request", "limit")


def test_runs_list_with_filters_sort_and_pages_and_compare(client: TestClient) -> None:
    ids = {}
    for name, depth, auc in [("a", 3, 0.7), ("b", 5, 0.9), ("c", 8, 0.8)]:
        rid = client.post("/v1/runs", json={"experiment": "churn", "name": name,
                                            "params": {"max_depth": depth}}).json()["id"]
        client.post(f"/v1/runs/{rid}/log", json={"metrics": [{"key": "roc_auc", "value": auc}]})
        client.post(f"/v1/runs/{rid}/end")
        ids[name] = rid
    client.post("/v1/runs", json={"experiment": "other", "name": "d"})

    def names(url: str, **params) -> list[str]:
        response = client.get(url, params=params)
        assert response.status_code == 200, response.text
        return [r["name"] for r in response.json()["runs"]]

    runs_of = "/v1/experiments/churn/runs"
    assert names(runs_of, filter=["params.max_depth>=5"], sort="name") == ["b", "c"]
    assert names(runs_of, filter=["metrics.roc_auc>0.75", "params.max_depth!=8"]) == ["b"]
    assert names(runs_of, sort="-metrics.roc_auc") == ["b", "c", "a"]
    assert names("/v1/runs", status="RUNNING") == ["d"]
    assert names("/v1/runs", experiment=["churn", "other"], sort="name") == ["a", "b", "c", "d"]
    page = client.get(runs_of, params={"sort": "name", "limit": 2, "offset": 2}).json()
    assert ([r["name"] for r in page["runs"]], page["total"], page["next_offset"]) == (
        ["c"], 3, None)
    assert client.get(runs_of, params={"limit": 2}).json()["next_offset"] == 2
    side = client.post("/v1/runs/compare", json={"runs": [ids["a"], ids["b"]]}).json()
    assert [r["name"] for r in side["runs"]] == ["a", "b"]
    assert side["params"] == [{"key": "max_depth", "values": ["3", "5"], "differs": True}]
    assert side["metrics"] == [{"key": "roc_auc", "values": [0.7, 0.9], "differs": True}]


# -- artifacts --------------------------------------------------------------------------------
def _raw_get(app, raw_path: bytes) -> tuple[int, bytes]:
    """GET these exact path bytes, as uvicorn hands them to the app: the query split off at
    the first '?', the path percent-decoded once, nothing normalised."""
    path, _, query = raw_path.partition(b"?")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": unquote(path.decode("latin-1")),
             "raw_path": path, "query_string": query, "root_path": "",
             "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 5000),
             "server": ("testserver", 80)}
    sent: list[dict] = []

    async def run() -> None:
        done, asked = anyio.Event(), []

        async def receive() -> dict:
            if not asked:  # the (empty) body once, then the client leaves when answered
                asked.append(True)
                return {"type": "http.request", "body": b"", "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                done.set()

        await app(scope, receive, send)

    anyio.run(run)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], b"".join(m.get("body", b"") for m in sent
                                     if m["type"] == "http.response.body")


# each a path below /v1/runs/{id}/artifacts/, as raw request bytes
RAW_ESCAPES = [b"../secret.txt", b"../../secret.txt", b"../../../../../../etc/passwd",
               b"a/../../secret.txt", b"%2e%2e/secret.txt", b"%2E%2E/%2e%2e/secret.txt",
               b"%2e%2e%2fsecret.txt", b"..%2fsecret.txt", b"%252e%252e/secret.txt",
               b"%252e%252e%252fsecret.txt", b"..%5csecret.txt", b"..\\secret.txt",
               b"a%5c..%5c..%5csecret.txt", b"/etc/passwd", b"%2fetc%2fpasswd",
               b"C:%5cWindows%5cwin.ini", b"b.txt%23/../../secret.txt",
               b"b.txt%3f/../../secret.txt", b"b.txt#/../../secret.txt",
               b"..;/secret.txt", b"b.txt%00.png", b"%00", b"./b.txt", b".", b"..",
               b"out/secret.txt", b"out_file", b"a//c.txt", b"a/"]


@pytest.fixture
def run_with_files(backend: str, tmp_path: Path) -> int:
    (tmp_path / "secret.txt").write_text("do not serve")
    db = Database()
    with tracking.start_run(experiment="x", db=db) as run:
        run.log_artifact(b"fine", "b.txt")
        run.log_artifact(b"deep", "a/c.txt")
    db.dispose()
    root = tracking.run_root(run.run_id)
    os.symlink(tmp_path, root / "out")
    os.symlink(tmp_path / "secret.txt", root / "out_file")
    (root.parent / "secret.txt").write_text("the runs directory's")
    return run.run_id


def test_artifacts_are_listed_and_downloaded(run_with_files: int) -> None:
    with TestClient(create_app(background=False)) as client:
        listed = client.get(f"/v1/runs/{run_with_files}/artifacts")
        assert listed.json() == [{"path": "a/c.txt", "size_bytes": 4},
                                 {"path": "b.txt", "size_bytes": 4}]
        got = client.get(f"/v1/runs/{run_with_files}/artifacts/a/c.txt")
        assert got.status_code == 200 and got.content == b"deep"
        assert got.headers["content-disposition"].startswith("attachment")
        assert got.headers["x-content-type-options"] == "nosniff"
        assert client.get(f"/v1/runs/{run_with_files}/artifacts/a%2fc.txt").content == b"deep"


def test_every_path_out_of_the_run_root_is_404(run_with_files: int) -> None:
    app = create_app(background=False)
    base = f"/v1/runs/{run_with_files}/artifacts/".encode()
    served = {}
    for tail in RAW_ESCAPES:
        status, body = _raw_get(app, base + tail)
        doc = json.loads(body) if status == 404 else {}
        if status != 404 or "has no artifact" not in doc.get("detail", ""):
            served[tail] = (status, body[:80])  # answered, or refused by something else
    assert served == {}
    # the same route serves a real file: the refusals are the paths', not the route's
    assert _raw_get(app, base + b"b.txt") == (200, b"fine")
    assert _raw_get(app, base + b"a%2Fc.txt") == (200, b"deep")


# -- CLI --------------------------------------------------------------------------------------
def test_cli_lists_and_shows_runs(backend: str) -> None:
    db = Database()
    with tracking.start_run(experiment="churn", name="baseline", db=db) as run:
        run.log_params({"max_depth": 3})
        run.log_metric("roc_auc", 0.8)
    with tracking.start_run(experiment="fraud", name="other", db=db):
        pass
    db.dispose()
    listed = runner.invoke(cli, ["runs", "--experiment", "churn", "--json"])
    assert listed.exit_code == 0, listed.output
    page = json.loads(listed.stdout)
    assert [r["name"] for r in page["runs"]] == ["baseline"] and page["total"] == 1
    shown = runner.invoke(cli, ["run", str(run.run_id), "--json"])
    doc = json.loads(shown.stdout)
    assert doc["params"] == {"max_depth": "3"} and doc["metrics"] == {"roc_auc": 0.8}
    assert doc["metric_history"]["roc_auc"][0]["step"] == 0 and doc["artifacts"] == []
    table = runner.invoke(cli, ["runs", "--filter", "metrics.roc_auc>0.5"])
    assert table.exit_code == 0 and "baseline" in table.stdout and "other" not in table.stdout
    assert "max_depth" in runner.invoke(cli, ["run", str(run.run_id)]).stdout
    bad = runner.invoke(cli, ["runs", "--status", "DONE"])
    assert bad.exit_code == 2 and "status: 'DONE' is not among" in bad.stderr
    missing = runner.invoke(cli, ["run", "999"])
    assert missing.exit_code == 2 and "No run 999" in missing.stderr
