"""Storage that cannot serve a call (locked past the busy timeout, PostgreSQL unreachable, disk
full) answers 503 `storage_unavailable` + Retry-After in the API and exit 1 in the CLI, and
leaves nothing half-written; an emptied database beside artifacts is refused; `workbench
backup` round-trips; bad settings are exit 2 naming the variable."""

from __future__ import annotations

import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from app.api import create_app
from app.cli import app as cli
from app.cli_common import database
from core.deploy import deployments as dep
from core.predict import predict
from core.registry import list_versions
from core.settings import get_settings
from core.store import Database
from tests.factories import (
    ROOT,
    forget_stores,
    record,
    register,
    store_session,
    store_snapshot,
)

runner = CliRunner()
CSV = b"a,b,plan\n0.1,0.5,basic\n0.2,0.7,pro\n"


def _unavailable(resp) -> str:
    assert resp.status_code == 503, resp.text
    assert resp.json()["error"] == "storage_unavailable"
    assert int(resp.headers["Retry-After"]) > 0
    return resp.json()["detail"]


@pytest.fixture
def deployed(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("WORKBENCH_SQLITE_BUSY_TIMEOUT_S", "0.2")
    forget_stores()
    register()
    register(seed=1)
    with store_session() as _s:
        dep.deploy("churn", 1, session=_s)
    with TestClient(create_app(background=False), raise_server_exceptions=False) as c:
        yield c


# -- locked past the busy timeout -----------------------------------------------------------
def test_a_locked_sqlite_database_is_503_and_exit_1_with_nothing_written(
        deployed: TestClient, home: Path) -> None:
    before = store_snapshot()
    holder = sqlite3.connect(home / "workbench.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
    try:
        detail = _unavailable(deployed.post("/v1/datasets?name=t", content=CSV,
                                            headers={"content-type": "text/csv"}))
        assert "busy" in detail and "WORKBENCH_SQLITE_BUSY_TIMEOUT_S" in detail
        _unavailable(deployed.post("/v1/deployments/churn", json={"version": 2}))
        _unavailable(deployed.post("/v1/deployments/churn/rollback"))
        # predictions need no write: they keep being answered
        assert deployed.post("/v1/models/churn/predict",
                             json={"records": [record()]}).status_code == 200
        result = runner.invoke(cli, ["seed"])
        assert result.exit_code == 1, result.output
        assert "database is busy" in result.stderr and "Traceback" not in result.output
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store_snapshot() == before  # no dataset row, no parquet file, no deployment
    assert deployed.post("/v1/datasets?name=t", content=CSV,
                         headers={"content-type": "text/csv"}).status_code == 201


# -- PostgreSQL unreachable -----------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_postgresql_is_503_and_exit_1(home: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"postgresql+psycopg://workbench:secret@127.0.0.1:"
                                       f"{_closed_port()}/workbench")
    forget_stores()
    with TestClient(create_app(background=False), raise_server_exceptions=False) as c:
        assert c.get("/health").status_code == 200  # the process itself is alive
        detail = _unavailable(c.get("/v1/models"))
        assert "database server is unavailable" in detail and "secret" not in detail
        _unavailable(c.post("/v1/models/churn/predict", json={"records": [record()]}))
        _unavailable(c.post("/v1/deployments/churn", json={"version": 1}))
    for args in (["models"], ["seed"], ["serve", "--no-monitor"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1, result.output
        assert "database server is unavailable" in result.stderr
        assert "internal error" not in result.output and "secret" not in result.output


# -- disk full ------------------------------------------------------------------------------
def test_a_full_database_is_503_and_leaves_no_half_written_dataset(
        deployed: TestClient) -> None:
    """SQLite's own SQLITE_FULL: the database may not grow by a page (PRAGMA max_page_count),
    exactly what a full disk looks like to the engine (every engine of this process: the
    API's, the CLI's and the transition default)."""
    from app.cli_common import forget_databases

    def cap(dbapi_conn, _record) -> None:
        pages = dbapi_conn.execute("PRAGMA page_count").fetchone()[0]
        dbapi_conn.execute(f"PRAGMA max_page_count={pages}")

    event.listen(Engine, "connect", cap)
    for engine in (deployed.app.state.db.engine, database().engine):
        engine.dispose()  # new connections get the cap
    forget_databases()
    before = store_snapshot()
    wide = pd.DataFrame({f"col_{i}": range(30) for i in range(300)}).to_csv(index=False)
    detail = _unavailable(deployed.post("/v1/datasets?name=wide", content=wide.encode(),
                                        headers={"content-type": "text/csv"}))
    assert "disk" in detail and "full" in detail
    assert store_snapshot() == before  # neither the row nor its parquet file
    result = runner.invoke(cli, ["seed"])  # several datasets: some may fit before it fills
    assert result.exit_code == 1 and "disk holding the database is full" in result.stderr
    event.remove(Engine, "connect", cap)
    for engine in (deployed.app.state.db.engine, database().engine):
        engine.dispose()
    forget_databases()


def _can_mount_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs "
                            "/mnt && umount /mnt"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _can_mount_tmpfs(), reason="needs unprivileged user namespaces "
                    "(unshare -rm) to mount a small tmpfs")
def test_a_really_full_disk_is_exit_1_and_leaves_no_files(tmp_path: Path) -> None:
    """A real ENOSPC: WORKBENCH_HOME on a 4 MB tmpfs (in a private mount namespace), filled up
    after the store is created; `workbench seed` must say the disk is full and leave neither
    a dataset row nor a stray temporary file."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    script = f"""
set -e
mount -t tmpfs -o size=4m tmpfs {mnt}
export WORKBENCH_HOME={mnt}/home PYTHONPATH={ROOT}
{sys.executable} -c 'from core.store import Database; Database().engine'
dd if=/dev/zero of={mnt}/filler bs=4k 2>/dev/null || true
set +e
{sys.executable} -m app seed
echo "rc=$?"
rm {mnt}/filler
{sys.executable} -c 'import sqlite3; print(sqlite3.connect("{mnt}/home/workbench.db")
    .execute("select count(*) from dataset").fetchone()[0])'
find {mnt}/home -name '*.tmp' -o -name '*.parquet'
"""
    done = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True,
                          text=True, cwd=ROOT, timeout=120)
    assert "rc=1" in done.stdout, done.stdout + done.stderr
    assert "disk holding the database is full" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    tail = done.stdout.split("rc=1", 1)[1].split()
    assert tail == ["0"], done.stdout  # no dataset stored, no parquet or temp file left


# -- an emptied database --------------------------------------------------------------------
def test_an_empty_database_beside_artifacts_is_refused(home: Path) -> None:
    register()
    forget_stores()
    db = home / "workbench.db"
    db.write_bytes(b"")  # e.g. truncated by a full disk or a bad copy
    result = runner.invoke(cli, ["models"])
    assert result.exit_code == 2, result.output
    assert "empty (0 bytes)" in result.stderr and "backup" in result.stderr
    assert db.stat().st_size == 0  # not replaced by a new, empty registry
    with TestClient(create_app(background=False), raise_server_exceptions=False) as c:
        resp = c.get("/v1/models")
        assert resp.status_code == 503 and resp.json()["error"] == "store_damaged"
    assert db.stat().st_size == 0


@pytest.mark.empty_home
def test_a_brand_new_home_with_an_empty_database_file_is_still_created(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "workbench.db").write_bytes(b"")
    assert runner.invoke(cli, ["models"]).exit_code == 0
    assert (home / "workbench.db").stat().st_size > 0


# -- backup and restore ---------------------------------------------------------------------
def _rows() -> pd.DataFrame:
    return pd.DataFrame([record(i) for i in range(20)])


def _versions_and_predictions() -> tuple[list[int], pd.DataFrame]:
    """What a freshly started process sees in the store: churn's versions and what
    churn's production version predicts for `_rows()`."""
    store = Database()
    try:
        with store.session() as s:
            versions = [v.version for v in list_versions("churn", session=s)]
            return versions, predict("churn", _rows(), session=s).frame
    finally:
        store.dispose()


def test_backup_round_trip_while_a_writer_keeps_writing(home: Path, tmp_path: Path) -> None:
    register()
    register(seed=1)
    with store_session() as _s:
        dep.deploy("churn", 1, session=_s)
    _, expected = _versions_and_predictions()
    stop = threading.Event()
    live = Database()

    def writer() -> None:  # a live server/worker writing throughout the backup
        from core.store.audit import record as audit

        while not stop.is_set():
            with live.session(write=True) as s:
                audit(s, "test.write", "x")

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        result = runner.invoke(cli, ["backup", str(tmp_path / "bk"), "--with-artifacts"])
        plain = runner.invoke(cli, ["backup", str(tmp_path / "bk.db"), "--json"])
    finally:
        stop.set()
        thread.join()
        live.dispose()
    assert result.exit_code == 0, result.output
    assert "2 version(s)" in result.stdout
    assert plain.exit_code == 0, plain.output
    doc = json.loads(plain.stdout)
    assert doc["versions"] == 2 and doc["artifacts"] is None
    assert "artifacts are not in this file" in doc["notes"][0]
    assert not (tmp_path / "bk.db-wal").exists()  # one self-contained file
    again = runner.invoke(cli, ["backup", str(tmp_path / "bk.db")])
    assert again.exit_code == 2 and "--force" in again.stderr
    assert runner.invoke(cli, ["backup", str(tmp_path / "bk.db"), "--force"]).exit_code == 0

    forget_stores()
    shutil.rmtree(home)  # the disaster
    home.mkdir()
    shutil.copy(tmp_path / "bk" / "workbench.db", home / "workbench.db")  # the restore
    shutil.copytree(tmp_path / "bk" / "artifacts", home / "artifacts")
    forget_stores()
    versions, predicted = _versions_and_predictions()
    assert versions == [1, 2]
    with store_session() as s:
        assert dep.get_state("churn", session=s).stable == 1
    pd.testing.assert_frame_equal(predicted, expected)

    forget_stores()  # the single-file backup restores the registry too
    (home / "workbench.db").unlink()
    shutil.copy(tmp_path / "bk.db", home / "workbench.db")
    assert _versions_and_predictions()[0] == [1, 2]


def test_backup_of_postgresql_says_how_with_pg_dump(home: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://wb:secret@db.example:5433/reg")
    result = runner.invoke(cli, ["backup", "x.dump"])
    assert result.exit_code == 2
    assert "pg_dump --format=custom" in result.stderr and "--host db.example" in result.stderr
    assert "secret" not in result.output


# -- bad settings ---------------------------------------------------------------------------
@pytest.mark.parametrize("var, value, expected", [
    ("WORKBENCH_SQLITE_BUSY_TIMEOUT_S", "abc", "a number greater than 0"),
    ("WORKBENCH_MAX_CONCURRENT_JOBS", "0", "a whole number at least 1"),
    ("WORKBENCH_WORKER_MODE", "fork", "process|thread"),
])
def test_a_bad_setting_is_exit_2_naming_the_variable(home: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    var: str, value: str, expected: str) -> None:
    monkeypatch.setenv(var, value)
    for args in (["models"], ["serve", "--no-monitor"], ["ui"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, result.output
        assert var in result.stderr and repr(value) in result.stderr
        assert expected in result.stderr
        assert "internal error" not in result.output and "Traceback" not in result.output


def test_settings_are_read_as_before_when_valid(home: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_SQLITE_BUSY_TIMEOUT_S", "2.5")
    assert get_settings().sqlite_busy_timeout_s == 2.5
