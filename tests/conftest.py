"""Shared fixtures: an isolated WORKBENCH_HOME per test, and the same tests on PostgreSQL.

PostgreSQL runs when WORKBENCH_TEST_DATABASE_URL names a server whose role may create
databases (`.ci/pg-start` prints one); every test gets its own throwaway database. In CI
(CI=true) a missing server is a failure, not a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from core.store import reset_engines

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
PG_ADMIN_URL = os.environ.get("WORKBENCH_TEST_DATABASE_URL")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "home"
    monkeypatch.setenv("WORKBENCH_HOME", str(path))
    for var in ("DATABASE_URL", "WORKBENCH_API_TOKEN", "WORKBENCH_MAX_UPLOAD_MB",
                "WORKBENCH_BIND_HOST", "WORKBENCH_ALLOWED_ORIGINS",
                "WORKBENCH_WEBHOOK_ALLOW_PRIVATE"):
        monkeypatch.delenv(var, raising=False)
    # FastAPI's TestClient calls itself `testserver`: allowed here, never by default
    monkeypatch.setenv("WORKBENCH_ALLOWED_HOSTS", "testserver")
    monkeypatch.chdir(tmp_path)
    reset_engines()
    yield path
    from core.jobs.worker import stop_spawned_workers

    stop_spawned_workers(path)  # workers the app/CLI started for this test
    reset_engines()


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    if not PG_ADMIN_URL:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: set WORKBENCH_TEST_DATABASE_URL "
                        "(see .ci/pg-start).")
        pytest.skip("no PostgreSQL server (set WORKBENCH_TEST_DATABASE_URL to run these)")
    return PG_ADMIN_URL


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test."""
    name = f"wb_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = pg_admin_url.rsplit("/", 1)[0] + "/" + name
    yield url
    reset_engines()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, home: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test on SQLite and again on a real PostgreSQL server."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        monkeypatch.setenv("DATABASE_URL", url)
        reset_engines()
    yield request.param
    reset_engines()
