"""`GET /health` says which server process answered (`pid`: how tests and operators see the
split over `workbench serve --workers N`) to a signed-in caller, and to anyone when sign-in
is not configured (a local server); an anonymous caller of a server with sign-in configured
gets liveness without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api import create_app


def test_health_gives_the_process_id_to_a_signed_in_caller_only(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with TestClient(create_app(background=False)) as c:  # no sign-in configured
        assert c.get("/health").json()["pid"] == os.getpid()
    monkeypatch.setenv("WORKBENCH_API_TOKEN", "s3cret")
    with TestClient(create_app(background=False)) as c:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            r = c.get("/health", headers=headers)
            assert r.status_code == 200 and r.json()["status"] == "ok"
            assert r.json()["pid"] is None and str(os.getpid()) not in r.text
        signed_in = c.get("/health", headers={"Authorization": "Bearer s3cret"})
        assert signed_in.json()["pid"] == os.getpid()
