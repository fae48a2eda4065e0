"""The REST API over real registered pipelines: contract endpoints, error shape, auth,
MLflow formats, sticky canaries, restart, rollback, shadow scorecard and auto-rollback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from core.deploy import deployments as dep
from tests.factories import (
    built_home,
    copy_home,
    forget_stores,
    metric,
    record,
    register,
    store_session,
)


@pytest.fixture(scope="module")
def churn_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """churn 1 (deployed), 2 and 3 (refuses plans it never saw): built once, copied per test."""
    with built_home(tmp_path_factory, "api_churn") as path:
        register()
        register(seed=1)
        register(seed=2, strict_categories=True)
        with store_session() as _s:
            dep.deploy("churn", 1, session=_s)
    return path


@pytest.fixture
def client(churn_home: Path, home: Path) -> Iterator[TestClient]:
    copy_home(churn_home, home)
    with TestClient(create_app(background=False)) as c:
        yield c


def _predict(c: TestClient, records: list[dict], key: str | None = None, name: str = "churn"):
    return c.post(f"/v1/models/{name}/predict", json={"records": records, "request_key": key})


def _error(resp, status: int, code: str | None = None) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error", "detail"} and body["detail"]
    if code:
        assert body["error"] == code
    return body


def test_health_models_and_predict(client: TestClient) -> None:
    h = client.get("/health").json()
    assert h["status"] == "ok" and "churn:1" in h["models_loaded"]
    assert [m["name"] for m in client.get("/v1/models").json()] == ["churn"]
    one = client.get("/v1/models/churn").json()
    assert one["aliases"]["production"] == 1 and one["deployment"]["stable"] == 1
    [loaded] = one["loaded_here"]  # warmed
    assert {k: loaded[k] for k in ("version", "lean_path", "runtime")} == {
        "version": 1, "lean_path": True, "runtime": "lean"}
    assert loaded["runtime_requested"] == "auto" and loaded["runtime_reason"]
    r = _predict(client, [record(0), {**record(3), "extra": 1}, dict(reversed(record(5).items()))])
    assert r.status_code == 200
    body = r.json()
    assert body["model"] == "churn" and body["version"] == 1
    assert r.headers["X-Model-Version"] == "1" and r.headers["X-Request-Id"] == body["request_id"]
    assert len(body["predictions"]) == 3 and set(body["predictions"]) <= {"yes", "no"}
    assert all(abs(sum(p.values()) - 1) < 1e-9 for p in body["probabilities"])
    # numbers sent as text are coerced; a pipeline that cannot take a null says so with a 422
    assert _predict(client, [{"a": "0.5", "b": 1, "plan": "pro"}]).status_code == 200
    _error(_predict(client, [{"a": 0.5, "b": None, "plan": "pro"}]), 422, "prediction_failed")


def test_caller_mistakes_are_4xx_json(client: TestClient) -> None:
    _error(_predict(client, [record()], name="nope"), 404, "not_found")
    body = _error(_predict(client, [{"a": 1.0}]), 422, "schema_mismatch")
    assert "'b'" in body["detail"] and "'plan'" in body["detail"]
    _error(_predict(client, [{"a": "abc", "b": 1, "plan": "basic"}]), 422, "schema_mismatch")
    _error(client.post("/v1/models/churn/predict", json={"records": []}), 422, "invalid_request")
    _error(client.post("/v1/models/churn/predict", content=b"{not json",
                       headers={"content-type": "application/json"}), 422, "invalid_request")
    _error(client.post("/v1/models/churn/predict", json={"rows": [1]}), 422, "invalid_request")
    _error(client.post("/v1/deployments/churn", json={"version": 2, "percent": 150}), 422)
    _error(client.post("/v1/deployments/churn", json={"version": 9, "percent": 10}), 404)
    _error(client.post("/v1/deployments/churn/rollback"), 409, "conflict")
    _error(client.get("/v1/models/..%2F..%2Fetc"), 404)  # no path tricks
    _error(client.get("/v1/models/.hidden"), 400)
    _error(client.post("/v1/models/bad%3Bname/predict", json={"records": [record()]}), 400)
    _error(client.get("/v1/nothing-here"), 404)
    _error(client.post("/v1/models/churn/feedback", json={"request_id": "x", "actual": 1}), 404)
    big = {"records": [record()] * 10, "pad": "x" * (21 * 1024 * 1024)}
    _error(client.post("/v1/models/churn/predict", json=big), 413, "too_large")


def test_token_protects_everything_but_health(home: Path, monkeypatch) -> None:
    register()
    with store_session() as _s:
        dep.deploy("churn", 1, session=_s)
    monkeypatch.setenv("WORKBENCH_API_TOKEN", "s3cret")
    with TestClient(create_app(background=False)) as c:
        assert c.get("/health").status_code == 200
        _error(c.get("/v1/models"), 401, "unauthorized")
        _error(_predict(c, [record()]), 401)
        _error(c.get("/v1/models", headers={"Authorization": "Bearer wrong"}), 401)
        ok = c.get("/v1/models", headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


def test_mlflow_invocations_formats(client: TestClient) -> None:
    recs = [record(1), record(2, "pro")]
    expected = _predict(client, recs).json()["predictions"]
    split = {"dataframe_split": {"columns": ["a", "b", "plan"],
                                 "data": [[r["a"], r["b"], r["plan"]] for r in recs]}}
    for payload in (split, {"dataframe_records": recs}, {"inputs": recs},
                    {"inputs": {k: [r[k] for r in recs] for k in recs[0]}}):
        for url in ("/v1/models/churn/invocations", "/invocations"):
            r = client.post(url, json=payload)
            assert r.status_code == 200, r.text
            assert r.json() == {"predictions": expected}
    _error(client.post("/invocations", json={"dataframe_split": {"data": [[1]]}}), 422)
    _error(client.post("/invocations", json={"nothing": 1}), 422)


def test_evaluate_compare_load_unload_datasets(client: TestClient) -> None:
    labelled = [{**record(i), "y": "yes" if i % 2 else "no"} for i in range(20)]
    ev = client.post("/v1/models/churn/evaluate", json={"records": labelled}).json()
    assert ev["version"] == 1 and 0 <= ev["metrics"]["accuracy"] <= 1
    _error(client.post("/v1/models/churn/evaluate", json={"records": [record()]}), 422)
    cmp = client.post("/v1/models/compare", json={"versions": ["churn:1", "churn@production"],
                                                  "records": labelled}).json()
    assert [v["version"] for v in cmp["versions"]] == [1, 1]
    _error(client.post("/v1/models/compare", json={"versions": ["churn:7"]}), 404)
    assert client.post("/v1/models/churn/load", json={"version": 2}).json()["version"] == 2
    assert "churn:2" in client.get("/health").json()["models_loaded"]
    assert client.post("/v1/models/churn/unload", json={"version": 2}).json()["unloaded"] == [2]
    up = client.post("/v1/datasets?name=tiny", content=b"a,b\n1,2\n3,4\n",
                     headers={"content-type": "text/csv"})
    assert up.status_code == 201 and up.json()["rows"] == 2
    assert [d["name"] for d in client.get("/v1/datasets").json()] == ["tiny"]
    files = {"file": ("t.csv", b"a,b\n1,2\n3,4\n", "text/csv")}
    assert client.post("/v1/datasets", files=files).status_code == 200  # same content: stored once
    _error(client.post("/v1/datasets", content=b"\x00\x01garbage",
                       headers={"content-type": "application/octet-stream"}), 422)


def test_sticky_canary_restart_and_immediate_rollback(client: TestClient) -> None:
    r = client.post("/v1/deployments/churn", json={"version": 2, "percent": 10})
    assert r.status_code == 200 and r.json()["candidate"] == 2
    keys = [f"user-{i}" for i in range(300)]
    first = {k: _predict(client, [record()], k).json()["version"] for k in keys}
    assert 10 <= list(first.values()).count(2) <= 60
    assert first == {k: _predict(client, [record()], k).json()["version"] for k in keys}
    # a restarted server (new app, new engine) reads the same rule from the database
    forget_stores()
    with TestClient(create_app(background=False)) as other:
        assert {k: _predict(other, [record()], k).json()["version"] for k in keys} == first
        assert other.get("/v1/deployments/churn").json()["percent"] == 10
    raised = client.post("/v1/deployments/churn", json={"version": 2, "percent": 50}).json()
    assert raised["percent"] == 50
    at50 = {k: _predict(client, [record()], k).json()["version"] for k in keys}
    assert all(at50[k] == 2 for k in keys if first[k] == 2)
    rb = client.post("/v1/deployments/churn/rollback", json={"reason": "test"}).json()
    assert rb["candidate"] is None and rb["history"][0]["action"] == "deployment.rollback"
    assert {_predict(client, [record()], k).json()["version"] for k in keys} == {1}
    assert "churn:2" in client.get("/health").json()["models_loaded"]  # kept for analysis


def test_promote_moves_production(client: TestClient) -> None:
    client.post("/v1/deployments/churn", json={"version": 2, "percent": 10})
    out = client.post("/v1/deployments/churn/promote", json={"reason": "good"}).json()
    assert (out["stable"], out["candidate"]) == (2, None)
    assert client.get("/v1/models/churn").json()["aliases"]["production"] == 2
    assert _predict(client, [record()], "anyone").json()["version"] == 2


def test_shadow_scorecard_with_feedback(client: TestClient) -> None:
    client.post("/v1/deployments/churn", json={"version": 2, "percent": 100, "mode": "shadow"})
    serving = client.app.state.serving
    serving.cache.get("churn", 2)
    ids = []
    for i in range(12):
        r = _predict(client, [record(i)], f"k{i}").json()
        assert r["version"] == 1  # stable answers every request in shadow mode
        ids.append((r["request_id"], r["predictions"][0]))
    serving.shadow.wait(timeout=60)  # shadow copies run off the response path
    for i, (rid, pred) in enumerate(ids):
        actual = pred if i % 3 else ("no" if pred == "yes" else "yes")
        ok = client.post("/v1/models/churn/feedback", json={"request_id": rid, "actual": actual})
        assert ok.status_code == 200, ok.text
    card = client.get("/v1/models/churn/scorecard").json()
    (row,) = card["shadow"]
    assert (row["stable"], row["candidate"], row["labelled"]) == (1, 2, 12)
    assert row["stable_accuracy"] == pytest.approx(8 / 12)
    assert 0 <= row["candidate_accuracy"] <= 1 and 0 <= row["agreement"] <= 1


def test_auto_rollback_on_an_error_spike(client: TestClient) -> None:
    """Version 3 cannot encode a plan it never saw: 'gold' makes it fail for real. The
    caller still gets answers (from stable), and the guard rail rolls the candidate back."""
    client.post("/v1/deployments/churn", json={
        "version": 3, "percent": 100, "guard_rails": {"min_requests": 20,
                                                      "max_error_rate": 0.2}})
    serving = client.app.state.serving
    for i in range(10):
        r = _predict(client, [record(i)], f"k{i}")
        assert r.json()["version"] == 3
    assert serving.tick() == []  # 10 requests: below min_requests, no verdict
    for i in range(20):
        r = _predict(client, [record(i, "gold")], f"g{i}")
        assert r.status_code == 200 and r.json()["version"] == 1  # stable answered
    (verdict,) = serving.tick()
    assert verdict.action == "rollback" and "error rate" in verdict.reason
    d = client.get("/v1/deployments/churn").json()
    assert d["candidate"] is None
    event = d["history"][0]
    assert event["action"] == "deployment.rollback" and event["actor"] == "guard-rails"
    assert event["detail"]["automatic"] is True and event["detail"]["metrics"]["requests"] >= 20
    assert _predict(client, [record(1)], "k1").json()["version"] == 1


def test_metrics_endpoint_is_prometheus_text(client: TestClient) -> None:
    _predict(client, [record()])
    text = client.get("/metrics").text
    assert metric(text, "workbench_requests_total", model="churn", version="1") == 1
    assert metric(text, "workbench_request_duration_seconds_bucket", model="churn",
                  version="1", le="+Inf") == 1
    assert metric(text, "workbench_request_duration_seconds_count", model="churn",
                  version="1") == 1
    assert metric(text, "workbench_models_loaded") >= 1


def test_failures_of_the_stable_version_are_counted_shown_and_alerted(
        client: TestClient) -> None:
    """Version 1 has no imputer: a null makes it fail (prediction_failed). Such failures of
    the production version used to go uncounted (0 errors, no alert)."""
    from core.monitor.alerts import check, set_config

    with store_session() as s:
        set_config("churn", consecutive=1, min_requests=10, session=s)
    for i in range(15):
        assert _predict(client, [record(i)]).status_code == 200
    for _ in range(10):
        _error(_predict(client, [{"a": 0.5, "b": None, "plan": "pro"}]), 422,
               "prediction_failed")
    for _ in range(3):
        _error(_predict(client, [{"a": 1.0}]), 422, "schema_mismatch")
    client.app.state.serving.flush()
    outcomes = ("requests", "ok", "failed", "rejected", "errors")
    live = client.get("/v1/models/churn/monitor").json()["versions"]["1"]
    assert {k: live[k] for k in outcomes} == {"requests": 28, "ok": 15, "failed": 10,
                                              "rejected": 3, "errors": 10}
    assert live["error_rate"] == pytest.approx(10 / 25)  # of the requests it scored
    stable = client.get("/v1/deployments/churn").json()["live"]["stable"]
    assert {k: stable[k] for k in outcomes} == {k: live[k] for k in outcomes}
    text = client.get("/metrics").text
    labels = {"model": "churn", "version": "1"}
    for outcome, n in (("ok", 15), ("failed", 10), ("rejected", 3)):
        assert metric(text, "workbench_request_outcomes_total", **labels, outcome=outcome) == n
    assert metric(text, "workbench_requests_total", **labels) == 28
    assert metric(text, "workbench_request_errors_total", **labels) == 10
    assert metric(text, "workbench_request_duration_seconds_count", **labels) == 25
    with store_session() as s:
        (alert,) = [a for a in check("churn", session=s) if a.kind == "ERROR"]
    assert (alert.version, alert.severity) == (1, "critical") and "40.0%" in alert.message
    assert [(a["kind"], a["version"]) for a in client.get("/v1/alerts").json()] == \
        [("ERROR", 1)]


def test_a_canary_is_charged_only_for_what_stable_accepts(client: TestClient) -> None:
    """Records that stable also refuses (schema) are the caller's mistake: rejected at both
    versions, not a failure of the candidate."""
    client.post("/v1/deployments/churn", json={"version": 2, "percent": 100})
    _error(_predict(client, [{"a": 1.0}], "k"), 422, "schema_mismatch")
    assert _predict(client, [record()], "k").json()["version"] == 2
    client.app.state.serving.flush()
    live = client.get("/v1/deployments/churn").json()["live"]
    assert {k: live["candidate"][k] for k in ("ok", "failed", "rejected")} == \
        {"ok": 1, "failed": 0, "rejected": 1}
    assert {k: live["stable"][k] for k in ("ok", "failed", "rejected")} == \
        {"ok": 0, "failed": 0, "rejected": 1}


def test_out_of_range_numbers_are_422_not_500(client: TestClient) -> None:
    """Found by the schemathesis run: a version beyond SQL INTEGER overflowed the driver."""
    huge = 9223372036854775808
    _error(client.post("/v1/models/churn/evaluate", json={"records": [{}], "version": huge}), 422)
    _error(client.post("/v1/deployments/churn", json={"version": huge}), 422)
    _error(client.post("/v1/models/compare", json={"versions": [f"churn:{huge}"]}), 422)


def test_auto_advance_steps_through_and_promotes(client: TestClient) -> None:
    client.post("/v1/deployments/churn", json={
        "version": 2, "percent": 10, "auto_advance": True, "steps": [10, 50, 100],
        "guard_rails": {"min_requests": 5}})
    serving = client.app.state.serving
    seen = []
    for _ in range(12):
        for i in range(60):  # random routing: at 10 % about 6 reach the candidate
            _predict(client, [record(i)])
        seen += [v.action for v in serving.tick()]
        if client.get("/v1/deployments/churn").json()["candidate"] is None:
            break
    assert seen == ["advance", "advance", "promote"]
    assert client.get("/v1/models/churn").json()["aliases"]["production"] == 2


@pytest.mark.parametrize(("raw", "field"), [
    (b'{"max_error_rate": -1}', "guard_rails.max_error_rate"),
    (b'{"max_p99_ms": -100}', "guard_rails.max_p99_ms"),
    (b'{"min_requests": 1e308}', "guard_rails.min_requests"),
    (b'{"min_requests": Infinity}', "guard_rails.min_requests"),
    (b'{"max_error_rate": NaN}', "guard_rails.max_error_rate")])
def test_bad_guard_rails_are_422_naming_the_field(client: TestClient, raw: bytes,
                                                  field: str) -> None:
    before = client.get("/v1/deployments/churn").json()
    body = b'{"version": 2, "percent": 10, "guard_rails": ' + raw + b"}"
    resp = client.post("/v1/deployments/churn", content=body,
                       headers={"content-type": "application/json"})
    assert field in _error(resp, 422, "invalid_request")["detail"]
    after = client.get("/v1/deployments/churn").json()
    assert (after["candidate"], after["revision"]) == (None, before["revision"])


def test_rollback_racing_promote_through_the_api_one_is_409(client: TestClient) -> None:
    """The HTTP face of tests/core/test_deploy_races.py: both requests start together, one
    answers 200 and the other 409 `conflict`; a 200 rollback leaves version 1 in production."""
    from tests.factories import race

    for _ in range(10):
        assert client.post("/v1/deployments/churn", json={"version": 2, "percent": 10}
                           ).status_code == 200
        rolled, promoted = race(lambda: client.post("/v1/deployments/churn/rollback"),
                                lambda: client.post("/v1/deployments/churn/promote"))
        assert sorted((rolled.status_code, promoted.status_code)) == [200, 409]
        loser = rolled if rolled.status_code == 409 else promoted
        _error(loser, 409, "conflict")
        production = client.get("/v1/models/churn").json()["aliases"]["production"]
        assert production == (1 if rolled.status_code == 200 else 2)
        if production == 2:  # back to 1 as stable for the next round
            client.post("/v1/deployments/churn", json={"version": 1, "percent": 10})
            client.post("/v1/deployments/churn/promote")
