"""`GET /health` stays public (load balancers and orchestrators probe it) but says which models
are loaded only to a signed-in caller, and only its own workspace's: an anonymous caller of a
server with sign-in configured learns liveness and a count, never a model's name."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlmodel import Session

from app.api import create_app
from core.deploy import deployments as dep
from core.identity import Role
from core.identity.keys import create_key
from core.identity.workspaces import add_workspace
from core.store import Database
from core.store.scope import scope
from tests.factories import register_numeric


def test_health_names_loaded_models_to_their_workspace_only(backend: str, home: Path) -> None:
    db = Database()
    try:
        with scope(Session(db.engine, expire_on_commit=False), "default") as s:
            add_workspace("team-a", session=s)
            register_numeric(s, "secret-churn")
            dep.deploy("secret-churn", 1, percent=100, session=s)
            keys = {ws: create_key(f"{ws}-viewer", role=Role.VIEWER, workspace=ws,
                                   session=s).key for ws in ("default", "team-a")}
        with TestClient(create_app(background=False, db=db)) as c:
            mine = c.get("/health", headers={"Authorization": f"Bearer {keys['default']}"})
            assert mine.status_code == 200
            assert "secret-churn:1" in mine.json()["models_loaded"]  # warmed at start
            for headers in ({}, {"Authorization": "Bearer not-a-key"},
                            {"Authorization": f"Bearer {keys['team-a']}"}):
                r = c.get("/health", headers=headers)
                assert r.status_code == 200 and r.json()["status"] == "ok", r.text
                assert "secret-churn" not in r.text and r.json()["models_loaded"] == []
            assert mine.json()["models_loaded_count"] == len(mine.json()["models_loaded"])
            anonymous = c.get("/health").json()
            assert anonymous["models_loaded_count"] >= 1  # a count, no names
            assert c.get("/v2/health/ready").status_code == 200  # probes unaffected
    finally:
        db.dispose()
