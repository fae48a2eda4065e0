"""Shared fixtures: an isolated WORKBENCH_HOME per test, and the same tests on PostgreSQL.

PostgreSQL runs when WORKBENCH_TEST_DATABASE_URL names a server whose role may create
databases (`.ci/pg-start` prints one); every test gets its own throwaway database. In CI
(CI=true) a missing server is a failure, not a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

# One OpenMP thread per test process, set before anything loads libgomp: two xdist workers each
# fitting HistGradientBoosting with a spinning thread per core oversubscribe the two cores (a
# 400-row fit took 15 s instead of 0.2 s beside other load). The app limits its own threads.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError
from sqlmodel import Session

from core.settings import reset_settings
from core.store import Database
from tests.factories import forget_stores, start_worker

PG_ADMIN_URL = os.environ.get("WORKBENCH_TEST_DATABASE_URL")


class _SettingsAwareMonkeyPatch(pytest.MonkeyPatch):
    """Settings are parsed once per process; a test that changes the environment gets them
    parsed again, as a freshly started process would."""

    def setenv(self, name: str, value: str, prepend: str | None = None) -> None:
        super().setenv(name, value, prepend)
        reset_settings()

    def delenv(self, name: str, raising: bool = True) -> None:
        super().delenv(name, raising)
        reset_settings()

    def undo(self) -> None:
        super().undo()
        reset_settings()


@pytest.fixture
def monkeypatch() -> Iterator[pytest.MonkeyPatch]:
    mp = _SettingsAwareMonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty store migrated to head, built once per test process: each test's home starts
    from a copy (the 17 migrations cost ~0.4 s of CPU per store, in most tests). The
    migrations themselves from an empty file are tested in tests/core/test_migrations.py."""
    path = tmp_path_factory.mktemp("template") / "workbench.db"
    store = Database(url=f"sqlite:///{path}")
    store.engine  # noqa: B018  (built and migrated on first use)
    store.dispose()
    return path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
         migrated_sqlite: Path) -> Iterator[Path]:
    path = tmp_path / "home"
    if request.node.get_closest_marker("empty_home") is None:
        path.mkdir()
        shutil.copyfile(migrated_sqlite, path / "workbench.db")
    monkeypatch.setenv("WORKBENCH_HOME", str(path))
    for var in ("DATABASE_URL", "WORKBENCH_API_TOKEN", "WORKBENCH_MAX_UPLOAD_MB",
                "WORKBENCH_BIND_HOST", "WORKBENCH_ALLOWED_ORIGINS",
                "WORKBENCH_WEBHOOK_ALLOW_PRIVATE"):
        monkeypatch.delenv(var, raising=False)
    # FastAPI's TestClient calls itself `testserver`: allowed here, never by default
    monkeypatch.setenv("WORKBENCH_ALLOWED_HOSTS", "testserver")
    monkeypatch.chdir(tmp_path)
    forget_stores()
    yield path
    from app.workers import stop_spawned_workers

    stop_spawned_workers(path)  # workers the app/CLI started for this test
    forget_stores()


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
    forget_stores()
    for attempt in range(10):  # FORCE cannot end an autovacuum worker visiting the database
        try:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            break
        except ProgrammingError:
            if attempt == 9:
                raise
            time.sleep(0.5)
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, home: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run a test on SQLite and again on a real PostgreSQL server."""
    if request.param == "postgres":
        url = request.getfixturevalue("pg_url")
        monkeypatch.setenv("DATABASE_URL", url)
        forget_stores()
    yield request.param
    forget_stores()


@pytest.fixture
def db(home: Path) -> Iterator[Database]:
    """The test home's store (SQLite), as an adapter's composition root would build it."""
    store = Database()
    yield store
    store.dispose()


@pytest.fixture
def backend_db(backend: str) -> Iterator[Database]:
    """The store on SQLite, and again on PostgreSQL (see `backend`)."""
    store = Database()
    yield store
    store.dispose()


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    """A session on the test home's store, as an adapter hands one to a use case."""
    with Session(db.engine, expire_on_commit=False) as s:
        yield s


@pytest.fixture
def workers(home: Path,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start real `workbench worker` processes; all are killed at the end."""
    monkeypatch.setenv("WORKBENCH_HEARTBEAT_S", "0.5")
    procs: list[subprocess.Popen] = []
    yield lambda *args: start_worker(home, procs, *args)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


# -- `make test` runs the suite on two pytest-xdist workers (docs/testing/suite-time.md) ------
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under `--dist loadgroup`: one file is one unit of work (its module-scoped trained homes
    are built once), and the browser tests are one unit (one app, one browser, one `trained`
    session fixture), scheduled first because it is the longest."""
    if config.getoption("dist", None) != "loadgroup":
        return
    for item in items:
        if not item.get_closest_marker("xdist_group"):
            file = item.nodeid.split("::", 1)[0]
            group = "e2e" if file.startswith("tests/e2e/") else file
            item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=lambda item: not item.nodeid.startswith("tests/e2e/"))
