"""Lost jobs are reaped with no worker alive (by readers and the monitor beside `serve`), two
reapers never both act, and SIGTERM to a worker cancels its running job without registering."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlmodel import Session
from typer.testing import CliRunner

from app.api import create_app
from app.cli import app
from core.jobs import ledger
from core.jobs.reaper import reap_lost_jobs
from core.jobs.states import JobState
from core.jobs.worker import claim_next
from core.store import Database, Job, utcnow
from core.usecases.training import execute
from tests.factories import (
    CANCER,
    ROOT,
    list_versions_or_empty,
    state,
    submit,
    trials_done,
    wait_for,
)

runner = CliRunner()


def _cli_jobs(job_id: int) -> str:
    result = runner.invoke(app, ["jobs", "--json"])
    assert result.exit_code == 0, result.output
    return next(j["state"] for j in json.loads(result.stdout) if j["id"] == job_id)


def _cli_logs(job_id: int) -> str:
    result = runner.invoke(app, ["logs", str(job_id)])
    assert result.exit_code == 0, result.output
    return "FAILED" if "RUNNING → FAILED" in result.stdout else "RUNNING"


def _api(path: str) -> object:
    with TestClient(create_app(background=False)) as client:
        resp = client.get(path)
        assert resp.status_code == 200, resp.text
        return resp.json()


def _api_list(job_id: int) -> str:
    return next(j["state"] for j in _api("/v1/jobs") if j["id"] == job_id)


def _api_get(job_id: int) -> str:
    return _api(f"/v1/jobs/{job_id}")["state"]


def _jobs_page(job_id: int) -> str:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "pages" / "jobs.py"), default_timeout=60).run()
    assert not at.exception
    table = at.dataframe[0].value
    return table.loc[table["id"] == job_id, "state"].item()


READERS = {"cli jobs": _cli_jobs, "cli logs": _cli_logs, "GET /v1/jobs": _api_list,
           "GET /v1/jobs/{id}": _api_get, "Jobs page": _jobs_page}


def _stale_running_job(session: Session, age: timedelta = timedelta(minutes=5)) -> int:
    """A RUNNING job whose worker stopped beating `age` ago, as a kill -9 leaves it."""
    job = ledger.create_job(session=session, model_name="m", target="y",
                            task="classification", metric="roc_auc", state=JobState.RUNNING)
    row = session.get(Job, job.id)
    row.heartbeat_at, row.attempts, row.worker_id = utcnow() - age, 1, "gone:1:abc"
    session.add(row)
    session.commit()
    return job.id


@pytest.mark.parametrize("reader", READERS)
def test_every_reader_of_jobs_reaps_a_lost_one(reader: str, session: Session) -> None:
    job_id = _stale_running_job(session)
    assert READERS[reader](job_id) == "FAILED"
    after = ledger.get_job(job_id, session=session)
    assert after.error.startswith("worker lost: gone:1:abc sent no heartbeat for 30")
    assert "worker lost" in after.log  # the reason is in the job's log too


@pytest.mark.slow
def test_a_killed_workers_job_stops_showing_running_with_no_worker_alive(
        workers, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_WORKER_LOST_AFTER_S", "3")
    job = submit(session, CANCER, "diagnosis", budget=120)
    proc = workers()
    wait_for(lambda: state(session, job.id) == JobState.RUNNING, 60, "RUNNING")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    wait_for(lambda: _cli_jobs(job.id) != "RUNNING", 30, "`workbench jobs` to show it lost")
    assert _api_list(job.id) == "FAILED"
    after = ledger.get_job(job.id, session=session)
    assert after.error.startswith("worker lost: ")
    assert "WORKBENCH_WORKER_LOST_AFTER_S" in after.error
    assert [t.to_state for t in ledger.transitions_of(job.id, session=session)] == [
        "PENDING", "RUNNING", "FAILED"]


@pytest.mark.slow
def test_the_monitor_beside_serve_reaps_lost_jobs(workers, session: Session,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Server and worker killed together, then `workbench serve` restarted: its monitor
    process (no job worker) reaps; the test reads the ledger plainly, which reaps nothing."""
    monkeypatch.setenv("WORKBENCH_WORKER_LOST_AFTER_S", "3")
    lost_long_ago = _stale_running_job(session)
    lost_just_now = _stale_running_job(session, age=timedelta(seconds=0))
    workers("--monitor-only")
    wait_for(lambda: state(session, lost_long_ago) == JobState.FAILED, 30,
             "the monitor to reap")
    wait_for(lambda: state(session, lost_just_now) == JobState.FAILED, 30,
             "the monitor to reap once stale")


@pytest.mark.slow
def test_sigterm_cancels_the_running_job_and_registers_nothing(workers,
                                                               session: Session) -> None:
    job = submit(session, CANCER, "diagnosis", budget=120)
    proc = workers()
    wait_for(lambda: trials_done(session, job.id) >= 1, 60, "a first trial")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0  # stops at the next check, not at the end of 120 s
    after = ledger.get_job(job.id, session=session)
    assert after.state == JobState.CANCELLED and after.version_id is None
    assert "stopped by SIGTERM" in after.log
    last = ledger.transitions_of(job.id, session=session)[-1]
    assert (last.from_state, last.to_state) == ("RUNNING", "CANCELLED")
    assert last.reason.startswith("stopped by SIGTERM")
    assert list_versions_or_empty(session, "breast_cancer") == []


@pytest.mark.slow
def test_a_stop_that_comes_after_the_search_registers_nothing(db: Database,
                                                             session: Session) -> None:
    """The registration step asks `should_stop` itself: a stop the search never saw (it came
    while the final model was fitted) still cancels the job."""
    job = submit(session, CANCER, "diagnosis", budget=2, estimators=["linear"],
                 ensemble=False)
    assert claim_next("w1", session=session).id == job.id

    def stop_once_the_search_is_done() -> bool:
        return sys._getframe(1).f_globals.get("__name__") != "core.automl.search"

    assert execute(db, job.id, should_stop=stop_once_the_search_is_done) is None
    assert state(session, job.id) == JobState.CANCELLED
    assert list_versions_or_empty(session, "breast_cancer") == []


def _race(*calls: Callable[[], list[int]]) -> list[list[int]]:
    """Run the calls in threads released together by a barrier; re-raise any error."""
    barrier = threading.Barrier(len(calls))
    results: list[list[int]] = [[] for _ in calls]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = calls[i]()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    return results


def _reap(db: Database, by: str) -> list[int]:
    with db.session() as s:
        return reap_lost_jobs(session=s, by=by)


@pytest.mark.parametrize("requeue", [False, True], ids=["fail", "requeue"])
def test_two_reapers_racing_on_one_stale_job_record_one_transition(
        backend_db: Database, requeue: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_REQUEUE_LOST_JOBS", str(requeue).lower())
    with backend_db.session() as s:
        for _ in range(30):
            job_id = _stale_running_job(s)
            first, second = _race(lambda: _reap(backend_db, "reaper0"),
                                  lambda: _reap(backend_db, "reaper1"))
            assert sorted(first + second) == [job_id]
            moves = [t for t in ledger.transitions_of(job_id, session=s)
                     if t.from_state == JobState.RUNNING]
            assert len(moves) == 1
            assert moves[0].to_state == (JobState.PENDING if requeue else JobState.FAILED)
        assert reap_lost_jobs(session=s) == []  # idempotent: nothing left to move


def test_reaping_on_reads_is_one_read_query_when_nothing_is_lost(backend_db: Database) -> None:
    with backend_db.session() as s:
        job = ledger.create_job(session=s, model_name="m", target="y",
                                task="classification", metric="roc_auc",
                                state=JobState.RUNNING)  # fresh heartbeat
    statements: list[str] = []
    engine = backend_db.engine

    def seen(conn, cursor, sql, *args) -> None:  # noqa: ANN001
        statements.append(sql.split()[0].upper())

    event.listen(engine, "before_cursor_execute", seen)
    try:
        with backend_db.session() as s:
            assert reap_lost_jobs(session=s) == []
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert statements == ["SELECT"], statements  # no write lock taken on a read path
    with backend_db.session() as s:
        assert state(s, job.id) == JobState.RUNNING
