"""Property-based run against the OpenAPI spec (schemathesis strategies driven by
Hypothesis directly): no generated request may produce a 500, and every refusal has the
contract's error shape."""

from __future__ import annotations

from pathlib import Path

import pytest

schemathesis = pytest.importorskip("schemathesis")
from fastapi.testclient import TestClient  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

from app.api import create_app  # noqa: E402
from core.deploy import deployments as dep  # noqa: E402
from tests.core.test_deploy import register  # noqa: E402

pytestmark = pytest.mark.slow


def test_no_generated_request_gets_a_500(home: Path) -> None:
    register()
    register(seed=1)
    dep.deploy("churn", 1)
    app = create_app(background=False)
    failures: list[str] = []
    with TestClient(app):  # run the lifespan (warm-up) once
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        operations = [r.ok() for r in schema.get_all_operations()]
        assert len(operations) >= 15
        for op in operations:

            @given(case=op.as_strategy())
            @settings(max_examples=15, deadline=None, database=None, derandomize=True,
                      suppress_health_check=list(HealthCheck))
            def check(case) -> None:
                if case.path_parameters and "name" in case.path_parameters and \
                        len(failures) % 2 == 0:
                    case.path_parameters["name"] = "churn"  # reach the real model, too
                response = case.call()
                if response.status_code >= 500:
                    failures.append(f"{case.operation.label}: "
                                    f"{response.status_code} {response.text[:300]}")
                elif response.status_code >= 400:
                    body = response.json()
                    if set(body) != {"error", "detail"}:
                        failures.append(f"{case.operation.label}: bad error shape {body}")

            check()
    assert failures == []
