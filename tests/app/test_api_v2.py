"""The Open Inference Protocol (V2) over REST, as a KServe/Triton/MLServer client calls it:
health, metadata, infer with per-column tensors, one 2-D tensor and MLServer's pandas codec,
the versions route, `outputs`, errors in the protocol's shape, and the same answers as
/v1/models/{name}/predict on the same rows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LinearRegression
from sqlmodel import select

from app.api import create_app
from core.deploy import deployments as dep
from core.deploy.columns import stored_records
from core.registry import register_version
from core.store import RequestInput
from tests.factories import (
    NUMERIC_SCHEMA,
    built_home,
    copy_home,
    record,
    register,
    store_session,
)

ROWS = [record(i, plan) for i, plan in enumerate(["basic", "pro", "plus", "pro", "basic"])]


def _register_regressor() -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(60, 2)), columns=["a", "b"])
    with store_session() as s:
        register_version(LinearRegression().fit(X, 3 * X["a"] - X["b"]), session=s,
                         name="price", task="regression", target="y",
                         input_schema=NUMERIC_SCHEMA)
        dep.deploy("price", 1, session=s)


@pytest.fixture(scope="module")
def v2_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """churn 1 (deployed) and 2, price 1 (deployed): built once, copied per test."""
    with built_home(tmp_path_factory, "api_v2") as path:
        register()
        register(seed=1)
        _register_regressor()
        with store_session() as _s:
            dep.deploy("churn", 1, session=_s)
    return path


@pytest.fixture
def client(v2_home: Path, home: Path) -> Iterator[TestClient]:
    copy_home(v2_home, home)
    with TestClient(create_app(background=False)) as c:
        yield c


def columns(rows: list[dict], shape_1: bool = False) -> list[dict]:
    """One tensor per column, as a V2 client sends a table."""
    out = []
    for col in rows[0]:
        values = [r[col] for r in rows]
        kind = "BYTES" if isinstance(values[0], str) else "FP64"
        out.append({"name": col, "datatype": kind, "data": values,
                    "shape": [len(values), 1] if shape_1 else [len(values)]})
    return out


def _v1(client: TestClient, rows: list[dict], name: str = "churn") -> dict:
    r = client.post(f"/v1/models/{name}/predict", json={"records": rows})
    assert r.status_code == 200, r.text
    return r.json()


def _infer(client: TestClient, body: dict, name: str = "churn", version: int | str | None = None
           ) -> dict:
    path = f"/v2/models/{name}" + (f"/versions/{version}" if version is not None else "")
    r = client.post(path + "/infer", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert r.headers["X-Model-Version"] == doc["model_version"]
    assert r.headers["X-Request-Id"] == doc["parameters"]["request_id"]
    return doc


def _outputs(doc: dict) -> dict[str, dict]:
    return {o["name"]: o for o in doc["outputs"]}


def _error(resp, status: int, *words: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"}, body  # the protocol's error object
    for w in words:
        assert w in body["error"], body["error"]
    return body["error"]


def test_health_ready_and_metadata(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}  # stables warmed at start
    assert client.get("/v2/models/churn/ready").json() == {"name": "churn", "ready": True}
    assert client.get("/v2/models/churn/versions/2/ready").json()["ready"] is False
    meta = client.get("/v2/models/churn").json()
    assert meta["name"] == "churn" and meta["versions"] == ["1", "2"]
    assert meta["platform"] == "sklearn" and meta["parameters"]["version"] == "1"
    assert meta["inputs"] == [{"name": "a", "datatype": "FP64", "shape": [-1, 1]},
                              {"name": "b", "datatype": "FP64", "shape": [-1, 1]},
                              {"name": "plan", "datatype": "BYTES", "shape": [-1, 1]}]
    assert meta["outputs"] == [
        {"name": "predict", "datatype": "BYTES", "shape": [-1]},
        {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2],
         "parameters": {"classes": ["no", "yes"]}}]
    assert client.get("/v2/models/churn/versions/2").json()["parameters"]["version"] == "2"
    price = client.get("/v2/models/price").json()
    assert price["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    assert [i["datatype"] for i in price["inputs"]] == ["FP64", "FP64"]


def test_tensors_and_pandas_codec_answer_as_predict_does(client: TestClient) -> None:
    v1 = _v1(client, ROWS)
    proba = [[p["no"], p["yes"]] for p in v1["probabilities"]]
    bodies = [{"id": "req-42", "inputs": columns(ROWS)},
              {"inputs": columns(ROWS, shape_1=True)},  # [N, 1] tensors
              {"parameters": {"content_type": "pd"}, "inputs": columns(ROWS, shape_1=True)}]
    nested = columns(ROWS, shape_1=True)
    for t in nested:
        t["data"] = [[v] for v in t["data"]]  # data nested as the shape, also allowed
    bodies.append({"inputs": nested})
    for body in bodies:
        doc = _infer(client, body)
        assert (doc["model_name"], doc["model_version"]) == ("churn", "1")
        out = _outputs(doc)
        assert out["predict"] == {"name": "predict", "datatype": "BYTES", "shape": [5],
                                  "data": v1["predictions"]}
        assert out["predict_proba"]["shape"] == [5, 2]
        assert out["predict_proba"]["parameters"] == {"classes": ["no", "yes"]}
        assert np.allclose(np.reshape(out["predict_proba"]["data"], (5, 2)), proba)
        assert doc["id"] == body.get("id", doc["parameters"]["request_id"])


def test_regressor_with_a_2d_tensor_and_per_column(client: TestClient) -> None:
    rows = [{"a": a, "b": b} for a, b in [(0.5, 1.0), (-1.0, 2.0), (2.0, -0.5)]]
    expected = _v1(client, rows, "price")["predictions"]
    matrix = {"inputs": [{"name": "input-0", "shape": [3, 2], "datatype": "FP32",
                          "data": [v for r in rows for v in (r["a"], r["b"])]}]}
    for body in (matrix, {"inputs": columns(rows)}):
        out = _infer(client, body, "price")["outputs"]
        assert [o["name"] for o in out] == ["predict"]
        assert out[0]["datatype"] == "FP64" and out[0]["shape"] == [3]
        assert np.allclose(out[0]["data"], expected)
    _error(client.post("/v2/models/price/infer", json={**matrix, "outputs": [
        {"name": "predict_proba"}]}), 400, "predict_proba", "regressor")


def test_many_rows_answer_and_fail_as_few_do(client: TestClient) -> None:
    """Inputs of many values are checked and converted in one numpy call each (`number_array`,
    from oip.NUMBER_ARRAY_MIN): same answers, same logged rows, same refusals as a few."""
    rows = [record(i, plan) for i, plan in enumerate(["basic", "pro", "plus"] * 30)]
    rows[4]["a"], rows[9]["b"] = 3, -2  # integers among floats
    v1 = _v1(client, rows)
    doc = _infer(client, {"inputs": columns(rows)})
    assert _outputs(doc)["predict"]["data"] == v1["predictions"]
    price_rows = [{"a": r["a"], "b": r["b"]} for r in rows]
    matrix = {"inputs": [{"name": "m", "shape": [len(rows), 2], "datatype": "FP64",
                          "data": [v for r in price_rows for v in r.values()]}]}
    assert np.allclose(_infer(client, matrix, "price")["outputs"][0]["data"],
                       _v1(client, price_rows, "price")["predictions"])
    client.app.state.serving.flush()
    with store_session() as s:
        logged = {row.request_id: stored_records(row.rows)
                  for row in s.exec(select(RequestInput))}
    assert logged[doc["parameters"]["request_id"]] == rows
    for n in (3, len(rows)):  # a value no float holds: the same 400 whatever the size
        body = {"inputs": columns(rows[:n])}
        raw = json.dumps(body).replace(json.dumps(rows[1]["a"]), "1e999", 1)
        resp = client.post("/v2/models/churn/infer", content=raw,
                           headers={"content-type": "application/json"})
        assert resp.status_code == 400, resp.text
        if n == 3:
            few = resp.json()
        assert resp.json() == few


def test_outputs_selects_what_is_answered(client: TestClient) -> None:
    only = _infer(client, {"inputs": columns(ROWS), "outputs": [{"name": "predict_proba"}]})
    assert [o["name"] for o in only["outputs"]] == ["predict_proba"]
    both = _infer(client, {"inputs": columns(ROWS),
                           "outputs": [{"name": "predict"}, {"name": "predict_proba"}]})
    assert [o["name"] for o in both["outputs"]] == ["predict", "predict_proba"]
    _error(client.post("/v2/models/churn/infer", json={
        "inputs": columns(ROWS), "outputs": [{"name": "scores"}]}), 400, "'scores'",
        "predict, predict_proba")


def test_the_versions_route_pins_the_version(client: TestClient) -> None:
    doc = _infer(client, {"inputs": columns(ROWS)}, version=2)
    assert doc["model_version"] == "2"
    pinned = client.post("/v1/models/churn/evaluate", json={
        "version": 2, "records": [{**r, "y": "yes"} for r in ROWS], "target": "y"})
    assert pinned.status_code == 200
    assert _infer(client, {"inputs": columns(ROWS)}, version=1)["model_version"] == "1"
    assert client.get("/v2/models/churn/versions/2/ready").json()["ready"] is True  # loaded
    # a model with nothing deployed: the versions route still answers, the plain one is 404
    register("idle")
    _error(client.post("/v2/models/idle/infer", json={"inputs": columns(ROWS)}), 404,
           "no deployed version", "versions/VERSION/infer")
    assert _infer(client, {"inputs": columns(ROWS)}, "idle", 1)["model_version"] == "1"
    assert client.get("/v2/models/idle").json()["parameters"]["version"] == "1"


def test_unknown_models_and_versions_are_404(client: TestClient) -> None:
    body = {"inputs": columns(ROWS)}
    _error(client.post("/v2/models/nope/infer", json=body), 404, "not_found", "'nope'")
    _error(client.post("/v2/models/churn/versions/9/infer", json=body), 404, "version 9")
    _error(client.post("/v2/models/churn/versions/abc/infer", json=body), 404, "'abc'")
    _error(client.get("/v2/models/nope"), 404, "'nope'")
    _error(client.get("/v2/models/churn/versions/9"), 404)
    _error(client.get("/v2/models/nope/ready"), 404)
    _error(client.get("/v2/models/churn/versions/9/ready"), 404)
    assert client.app.state.serving.cache.failed == {}  # unknown versions leave no note


def _with(name: str, **change) -> dict:
    tensors = columns(ROWS)
    for t in tensors:
        if t["name"] == name:
            t.update(change)
    return {"inputs": tensors}


MISTAKES = [
    (_with("a", shape=[4]), ["'a'", "shape [4]", "5 values"]),
    (_with("a", shape=[5, 2], data=[0.0] * 10), ["'a'", "[N] or [N, 1]"]),
    (_with("a", datatype="BYTES", data=["1"] * 5), ["'a'", "numbers", "FP64"]),
    (_with("plan", datatype="FP64", data=[1.0] * 5), ["'plan'", "text", "BYTES"]),
    (_with("a", data=["x"] * 5), ["'a'", "FP64", "'x'"]),
    (_with("a", datatype="FLOAT"), ["'FLOAT'", "FP64"]),
    (_with("a", shape=[3], data=[1.0, 2.0, 3.0]), ["different row counts"]),
    ({"inputs": columns(ROWS)[:2]}, ["no input tensor", "'plan'", "BYTES"]),
    ({"inputs": [*columns(ROWS), {"name": "zip", "shape": [5], "datatype": "INT64",
                                  "data": [1] * 5}]}, ["Unknown input 'zip'", "a, b, plan"]),
    ({"inputs": [{"name": "x", "shape": [5, 3], "datatype": "FP64", "data": [0.0] * 15}]},
     ["'plan'", "one tensor per column"]),
    ({"parameters": {"content_type": "np64"}, "inputs": columns(ROWS)}, ["'np64'", '"pd"']),
    ({"inputs": [{"name": "a", "shape": [0], "datatype": "FP64", "data": []},
                 {"name": "b", "shape": [0], "datatype": "FP64", "data": []},
                 {"name": "plan", "shape": [0], "datatype": "BYTES", "data": []}]},
     ["no rows"]),
    ({"parameters": {"request_key": [1]}, "inputs": columns(ROWS)}, ["request_key"]),
    ({"inputs": []}, ["invalid_request", "inputs"]),
    ({"inputs": [{"name": "a", "shape": [-1], "datatype": "FP64", "data": [1.0]}]},
     ["invalid_request", "shape"]),
]


def test_caller_mistakes_are_400_in_the_protocols_shape(client: TestClient) -> None:
    for body, words in MISTAKES:
        _error(client.post("/v2/models/churn/infer", json=body), 400, *words)


def test_unparsable_json_is_400(client: TestClient) -> None:
    r = client.post("/v2/models/churn/infer", content=b"{not json",
                    headers={"Content-Type": "application/json"})
    _error(r, 400, "invalid_request")


def test_a_2d_tensor_of_the_wrong_width_names_the_schema_order(client: TestClient) -> None:
    body = {"inputs": [{"name": "x", "shape": [1, 3], "datatype": "FP64",
                        "data": [1.0, 2.0, 3.0]}]}
    _error(client.post("/v2/models/price/infer", json=body), 400, "[N, 2]", "a, b")


def test_the_api_token_protects_the_v2_routes(home: Path, monkeypatch) -> None:
    register()
    with store_session() as _s:
        dep.deploy("churn", 1, session=_s)
    monkeypatch.setenv("WORKBENCH_API_TOKEN", "s3cret")
    with TestClient(create_app(background=False)) as c:
        r = c.get("/v2/models/churn")
        assert r.status_code == 401 and isinstance(r.json()["error"], str)
        # liveness and readiness are public, as /health is (issue 16: orchestrators' probes)
        assert c.get("/v2/health/live").status_code == 200
        assert c.post("/v2/models/churn/infer", json={"inputs": columns(ROWS)}
                      ).status_code == 401
        ok = c.post("/v2/models/churn/infer", json={"inputs": columns(ROWS)},
                    headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["model_version"] == "1"


# -- hostile and careless bodies (review s9): numbers no float holds, text that is not UTF-8
# (a lone surrogate escape), wrongly typed parameters, shapes that do not match the data,
# nesting deeper than any table: the protocol's {"error": ...} with a 4xx, never a 500

def _body(a, b=None, **extra) -> dict:
    b = [0.5] if b is None else b
    return {"inputs": [{"name": "a", "datatype": "FP64", "shape": [len(a)], "data": a},
                       {"name": "b", "datatype": "FP64", "shape": [len(b)], "data": b}],
            **extra}


def _raw(text: str) -> bytes:
    return text.encode()


HOSTILE = {
    "int beyond float": _body([10**400]),
    "float overflow": _raw('{"inputs": [{"name": "a", "datatype": "FP64", "shape": [1], '
                           '"data": [1e400]}, {"name": "b", "datatype": "FP64", '
                           '"shape": [1], "data": [0.5]}]}'),
    "parameters a list": _body([0.5], parameters=[1]),
    "content_type a list": _body([0.5], parameters={"content_type": ["pd"]}),
    "request_key a dict": _body([0.5], parameters={"request_key": {"a": 1}}),
    "shape of 2**70": {"inputs": [{"name": "a", "datatype": "FP64", "shape": [2**70],
                                   "data": [0.5]}]},
    "mismatched lengths": _body([0.5, 0.6], [0.5]),
    "ragged nesting": _body([[0.5], [[0.6]]]),
    "deep nesting": _raw('{"inputs": [{"name": "a", "datatype": "FP64", "shape": [1], '
                         '"data": ' + "[" * 3000 + "0.5" + "]" * 3000 + "}]}"),
    "lone surrogate in a number column": _raw(
        '{"inputs": [{"name": "a", "datatype": "BYTES", "shape": [1], "data": ["\\ud800"]},'
        ' {"name": "b", "datatype": "FP64", "shape": [1], "data": [0.5]}]}'),
    "datatype a number": _body([0.5]) | {"inputs": [{"name": "a", "datatype": 5,
                                                      "shape": [1], "data": [0.5]}]},
    "id a dict": _body([0.5], id={"x": 1}),
    "outputs unknown": _body([0.5], outputs=[{"name": "explain"}]),
}


def test_hostile_v2_bodies_get_the_protocols_error_with_a_4xx(client: TestClient) -> None:
    """One server for every case (a fixture per case cost 10 s each on the shared machine)."""
    wrong = {}
    for case, body in HOSTILE.items():
        if isinstance(body, bytes):
            r = client.post("/v2/models/price/infer", content=body,
                            headers={"content-type": "application/json"})
        else:
            r = client.post("/v2/models/price/infer", json=body)
        if not 400 <= r.status_code < 500 or set(r.json()) != {"error"}:
            wrong[case] = (r.status_code, r.text[:200])
    assert wrong == {}


def test_v1_names_the_column_of_an_integer_no_float_holds(client: TestClient) -> None:
    r = client.post("/v1/models/price/predict", json={"records": [{"a": 10**400, "b": 0.5}]})
    assert r.status_code == 422
    assert r.json()["error"] == "schema_mismatch" and "'a'" in r.json()["detail"]
