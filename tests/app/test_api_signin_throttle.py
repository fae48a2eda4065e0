"""POST /v1/auth/token backs off: after five wrong sign-ins for a user name (known or not, the
same answers) further attempts are 429 with Retry-After, even with the right password, and
the route declares it (schemathesis reads /openapi.json)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.factories import signin_client


@pytest.fixture
def client(backend: str, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with signin_client(monkeypatch) as c:
        yield c


def _sign_in(c: TestClient, name: str, password: str):
    return c.post("/v1/auth/token", json={"username": name, "password": password})


def test_repeated_failures_get_429_with_retry_after(client: TestClient) -> None:
    for _ in range(5):
        assert _sign_in(client, "ann", "wrong-password").status_code == 401
    r = _sign_in(client, "ann", "password-1")  # right, but too late
    assert r.status_code == 429 and r.json()["error"] == "too_many_attempts", r.text
    assert 0 < int(r.headers["Retry-After"]) <= 300
    assert "try again in" in r.json()["detail"]


def test_an_unknown_name_is_throttled_exactly_like_a_known_one(client: TestClient,
                                                               monkeypatch) -> None:
    said = {}
    for name in ("ann", "ghost"):
        client.app.state.sign_in_throttle = None  # a fresh count per name (same address)
        answers = [_sign_in(client, name, "wrong-password") for _ in range(6)]
        said[name] = [(r.status_code, r.json()["error"], r.headers.get("Retry-After"))
                      for r in answers]
    assert said["ann"] == said["ghost"]
    assert [s for s, _, _ in said["ann"]] == [401] * 5 + [429]


def test_a_success_before_the_bound_resets_the_name(client: TestClient) -> None:
    for _ in range(4):
        _sign_in(client, "ann", "wrong-password")
    assert _sign_in(client, "ann", "password-1").status_code == 200
    assert _sign_in(client, "ann", "wrong-password").status_code == 401  # counted anew


def test_the_route_declares_429(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the OpenAPI document does not depend on the store: once, not once per backend
    with signin_client(monkeypatch) as client:
        doc = client.get("/openapi.json").json()
    assert "429" in doc["paths"]["/v1/auth/token"]["post"]["responses"]
