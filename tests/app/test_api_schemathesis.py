"""Property-based run against the OpenAPI spec (schemathesis strategies driven by
Hypothesis directly): no generated request may produce a 500, every refusal has the
contract's error shape, a write in any type but JSON is a 415, and with the database locked
every answer is either served or a 503 `storage_unavailable` with Retry-After."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

from app.api import create_app  # noqa: E402
from core.deploy import deployments as dep  # noqa: E402
from tests.factories import register, store_session  # noqa: E402

pytestmark = pytest.mark.slow
WRITES = {"POST", "PUT", "PATCH"}  # methods that carry a body


def _run(app, judge: Callable[[object, object], str | None], max_examples: int = 15,
         only: Callable[[object], bool] = lambda op: True,
         real: dict[str, object] | None = None) -> list[str]:
    """Call every operation with generated requests; `judge(case, response)` names a failure.
    Every other call's path parameters named in `real` (default: the model) take those values,
    so generated requests reach real objects as well as missing ones."""
    real = real or {"name": "churn"}
    failures: list[str] = []
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [r.ok() for r in schema.get_all_operations()]
    assert len(operations) >= 15
    calls: list[int] = []
    for op in filter(only, operations):

        @given(case=op.as_strategy())
        @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def check(case) -> None:
            calls.append(1)
            if len(calls) % 2:
                case.path_parameters.update(
                    {k: v for k, v in real.items() if k in (case.path_parameters or {})})
            problem = judge(case, case.call())
            if problem:
                failures.append(f"{case.operation.label}: {problem}")

        check()
    return failures


def _header(response, name: str) -> str | None:
    """A header of a schemathesis response (its headers map names to lists of values)."""
    for key, value in response.headers.items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else value
    return None


def _shape(case, response) -> str | None:
    if response.status_code >= 400:
        body = response.json()
        v2 = case.path.startswith("/v2/") and set(body) == {"error"}  # the protocol's shape
        if set(body) != {"error", "detail"} and not v2:
            return f"bad error shape {body}"
    return None


def _code(case, body: dict) -> str | None:
    """The error code: the V2 routes (Open Inference Protocol) answer {"error": "code: …"}."""
    if case.path.startswith("/v2/") and set(body) == {"error"}:
        return body["error"].split(":", 1)[0]
    return body.get("error")


@pytest.fixture
def deployed_app(home: Path):
    register()
    register(seed=1)
    with store_session() as _s:
        dep.deploy("churn", 1, session=_s)
    app = create_app(background=False)
    with TestClient(app):  # run the lifespan (warm-up) once
        yield app


def test_no_generated_request_gets_a_500(deployed_app) -> None:
    def judge(case, response) -> str | None:
        if response.status_code >= 500:
            return f"{response.status_code} {response.text[:300]}"
        return _shape(case, response)

    assert _run(deployed_app, judge) == []


def test_every_write_in_another_content_type_is_415(deployed_app) -> None:
    def judge(case, response) -> str | None:
        for kind in ("text/plain", "application/x-www-form-urlencoded"):
            answer = case.call(headers={"Content-Type": kind})
            if answer.status_code != 415 or answer.json()["error"] != "unsupported_media_type":
                return f"{kind}: {answer.status_code} {answer.text[:200]}"
        return None

    assert _run(deployed_app, judge, max_examples=3,
                only=lambda op: op.method.upper() in WRITES) == []


def test_with_the_database_locked_every_answer_is_served_or_503(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_SQLITE_BUSY_TIMEOUT_S", "0.05")  # read per call
    register()
    register(seed=1)
    with store_session() as _s:
        dep.deploy("churn", 1, session=_s)
    app = create_app(background=False)
    seen: set[int] = set()

    def judge(case, response) -> str | None:
        seen.add(response.status_code)
        if response.status_code == 503:
            if _code(case, response.json()) not in ("storage_unavailable", "overloaded"):
                return f"503 without the contract's code: {response.text[:200]}"
            if not str(_header(response, "retry-after")).isdigit():
                return f"503 without Retry-After: {response.text[:150]}"
        elif response.status_code >= 500:
            return f"{response.status_code} {response.text[:300]}"
        return _shape(case, response)

    with TestClient(app):
        holder = sqlite3.connect(home / "workbench.db", isolation_level=None)
        holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
        try:
            failures = _run(app, judge, max_examples=5)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
    assert failures == []
    assert 503 in seen  # the lock was felt: writes were refused, not silently dropped


# the routes of the lifecycle, tracking and API-parity work: their answers must match the
# response schemas they declare (what generated clients rely on), not only avoid a 500
TYPED_PREFIXES = ("/v1/runs", "/v1/experiments", "/v1/catalog", "/v1/deployments",
                  "/v1/workers", "/v1/jobs/{job_id}/", "/v1/models/{name}/versions/",
                  "/v1/models/{name}/scorecard", "/v1/models/{name}/aliases")


def test_new_routes_answer_what_their_schemas_declare(deployed_app) -> None:
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        response_schema_conformance,
        status_code_conformance,
    )

    from core.tracking import start_run

    with start_run(experiment="churn", name="baseline") as run:  # something to read back
        run.log_params({"max_depth": 3})
        run.log_metric("loss", 0.5, step=1)
        run.log_artifact(b"a,b\n1,2\n", "data/sample.csv")

    def judge(case, response) -> str | None:
        seen.append(response.status_code)
        try:
            case.validate_response(response, checks=[
                not_a_server_error, status_code_conformance, response_schema_conformance])
        except Exception as exc:  # schemathesis raises one error naming every failed check
            return str(exc).splitlines()[0][:300]
        return None

    seen: list[int] = []
    assert _run(deployed_app, judge, max_examples=10,
                only=lambda op: op.path.startswith(TYPED_PREFIXES),
                real={"name": "churn", "run_id": run.run_id, "version": 1}) == []
    assert 200 in seen
