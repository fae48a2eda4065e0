"""The prediction routes' short way (app/api/hot_lane.py) answers exactly as the whole ASGI
stack does: the same statuses, error bodies and headers for good requests, the caller's
mistakes, refusals by the request policy and the guard (host, origin, media type, body size,
sign-in), on /v1 predict, both MLflow routes and the V2 infer routes; and those routes do not
enter Starlette's middleware stack at all while every other route still does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from core.deploy import deployments as dep
from tests.factories import built_home, copy_home, record, register, store_session

ROWS = [record(i, plan) for i, plan in enumerate(["basic", "pro", "plus"])]
V2_BODY = {"parameters": {"content_type": "pd"}, "inputs": [
    {"name": "a", "shape": [3], "datatype": "FP64", "data": [r["a"] for r in ROWS]},
    {"name": "b", "shape": [3], "datatype": "FP64", "data": [r["b"] for r in ROWS]},
    {"name": "plan", "shape": [3], "datatype": "BYTES", "data": [r["plan"] for r in ROWS]}]}
JSON = {"Content-Type": "application/json"}
# (method, path, body or json, headers): good requests and every kind of refusal
CASES: list[tuple[str, dict]] = [
    ("/v1/models/churn/predict", {"json": {"records": ROWS}}),
    ("/v1/models/churn/predict", {"json": {"records": ROWS, "request_key": "u1"}}),
    ("/v1/models/churn/predict", {"json": {"records": [{"a": 1}]}}),          # schema
    ("/v1/models/churn/predict", {"json": {"records": []}}),                 # validation
    ("/v1/models/churn/predict", {"content": b"{", "headers": JSON}),        # not JSON
    ("/v1/models/churn/predict", {"content": b"{}", "headers": {"Content-Type": "text/csv"}}),
    ("/v1/models/churn/predict", {"json": {"records": ROWS},
                                  "headers": {"Origin": "https://evil.example"}}),
    ("/v1/models/churn/predict", {"json": {"records": ROWS},
                                  "headers": {"Host": "elsewhere.example"}}),
    ("/v1/models/churn/predict", {"content": b"{}", "headers": {
        **JSON, "Content-Length": str(30 * 1024 * 1024)}}),                  # too large
    ("/v1/models/nope/predict", {"json": {"records": ROWS}}),
    ("/v1/models/bad%20name/predict", {"json": {"records": ROWS}}),
    ("/invocations", {"json": {"dataframe_records": ROWS}}),
    ("/invocations", {"json": {"dataframe_split": {"data": [[1]]}}}),
    ("/v1/models/churn/invocations", {"json": {"inputs": ROWS}}),
    ("/v2/models/churn/infer", {"json": V2_BODY}),
    ("/v2/models/churn/infer", {"json": {**V2_BODY, "outputs": [{"name": "predict"}]}}),
    ("/v2/models/churn/infer", {"json": {**V2_BODY, "outputs": [{"name": "nope"}]}}),
    ("/v2/models/churn/infer", {"json": {"inputs": []}}),
    ("/v2/models/churn/versions/1/infer", {"json": V2_BODY}),
    ("/v2/models/churn/versions/7/infer", {"json": V2_BODY}),
    ("/v2/models/churn/versions/x/infer", {"json": V2_BODY}),
    ("/v2/models/nope/infer", {"json": V2_BODY}),
]
_IDS = re.compile(rb"[0-9a-f]{32}")
_VARYING = {"x-request-id", "date", "content-length"}


@pytest.fixture(scope="module")
def churn_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with built_home(tmp_path_factory, "hot_lane") as path:
        register()
        with store_session() as s:
            dep.deploy("churn", 1, session=s)
    return path


class Recorder:
    """Starlette's middleware stack, noting the paths that enter it."""

    def __init__(self, app) -> None:
        self.app, self.paths = app, []

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.paths.append(scope["path"])
        await self.app(scope, receive, send)


def _answers(hot_lane: bool) -> tuple[list[tuple], list[str]]:
    app = create_app(background=False, hot_lane=hot_lane)
    with TestClient(app) as client:
        app.middleware_stack = recorder = Recorder(app.middleware_stack)
        out = []
        for path, kwargs in CASES:
            r = client.post(path, **kwargs)
            headers = sorted((k, v) for k, v in r.headers.items() if k not in _VARYING)
            out.append((path, r.status_code, headers, _IDS.sub(b"ID", r.content)))
        assert client.get("/v1/models").status_code == 200
        client.post("/v1/models/churn/feedback", json={"request_id": "x", "actual": 1})
    return out, recorder.paths


@pytest.fixture
def both(churn_home: Path, home: Path) -> Iterator[dict]:
    copy_home(churn_home, home)
    yield {hot: _answers(hot) for hot in (True, False)}


def test_hot_lane_answers_as_the_whole_stack(both: dict) -> None:
    hot, whole = both[True][0], both[False][0]
    for a, b in zip(hot, whole, strict=True):
        assert a == b
    statuses = [a[1] for a in hot]  # the cases cover answers and every kind of refusal
    assert {200, 400, 403, 404, 413, 415, 422} <= set(statuses)


def test_prediction_routes_skip_the_middleware_stack(both: dict) -> None:
    hot_paths, whole_paths = both[True][1], both[False][1]
    assert hot_paths == ["/v1/models", "/v1/models/churn/feedback"]
    assert whole_paths == [unquote(p) for p, _ in CASES] + hot_paths


def test_sign_in_is_required_on_the_hot_lane(churn_home: Path, home: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    copy_home(churn_home, home)
    monkeypatch.setenv("WORKBENCH_API_TOKEN", "s3cret")
    with TestClient(create_app(background=False)) as client:
        for path, kwargs in CASES[:1] + CASES[11:12] + CASES[14:15]:
            r = client.post(path, **kwargs)
            assert (r.status_code, r.json()["error"]) == (401, "unauthorized"), path
            ok = client.post(path, **kwargs, headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200, ok.text
