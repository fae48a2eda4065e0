"""Background jobs with real worker processes: completion, cancel, pause/resume, a worker
killed with SIGKILL, two workers sharing one queue, schedules and the promotion gate."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from app.cli import app
from core.automl.request import TrainingRequest
from core.jobs import ledger
from core.jobs.reaper import reap_lost_jobs
from core.jobs.states import JobState
from core.jobs.worker import claim_next, retry_or_fail, sweep_orphan_artifacts
from core.registry import resolve
from core.settings import get_settings
from core.store import Database, ModelVersion
from core.usecases import training
from core.usecases.aliases import set_alias
from core.usecases.retraining import fire_due
from core.usecases.worker import job_worker
from tests.factories import (
    CANCER,
    DATA,
    list_versions_or_empty,
    state,
    submit,
    trials_done,
    wait_for,
)

runner = CliRunner()


@pytest.mark.slow  # real worker processes running searches
def test_cli_submit_starts_a_worker_that_completes_the_job(workers, session: Session) -> None:
    result = runner.invoke(app, ["submit", str(CANCER), "--target", "diagnosis",
                                 "--budget", "3", "--json"])
    assert result.exit_code == 0, result.output
    import json

    doc = json.loads(result.stdout)
    assert doc["state"] == "PENDING" and doc["worker_started"]
    wait_for(lambda: state(session, doc["job_id"]) == JobState.COMPLETED, 90,
             "the job to complete")
    job = ledger.get_job(doc["job_id"], session=session)
    assert job.version_id is not None and job.cpu_seconds > 0 and job.peak_memory_mb > 50
    assert "trial" in job.log
    assert [v.version for v in list_versions_or_empty(session, "breast_cancer")] == [1]
    states = [t.to_state for t in ledger.transitions_of(job.id, session=session)]
    assert states == ["PENDING", "RUNNING", "COMPLETED"]


@pytest.mark.slow  # real worker processes running searches
@pytest.mark.serial  # a timed cancel: alone, not beside a parallel worker
def test_cancel_stops_a_running_search_within_five_seconds(workers, session: Session) -> None:
    job = submit(session, CANCER, "diagnosis", budget=120)
    workers()
    wait_for(lambda: trials_done(session, job.id) >= 2, 60, "two trials")
    result = runner.invoke(app, ["cancel", str(job.id)])
    assert result.exit_code == 0, result.output
    took = wait_for(lambda: state(session, job.id) == JobState.CANCELLED, 10, "the cancel")
    assert took < 5, f"cancel took {took:.1f}s"
    assert len(ledger.trials_of(job.id, session=session)) >= 2  # finished trials are kept
    assert list_versions_or_empty(session, "breast_cancer") == []


@pytest.mark.slow  # real worker processes running searches
@pytest.mark.serial  # the pause must land within an 8 s search: alone
def test_pause_holds_new_trials_and_resume_continues(workers, session: Session) -> None:
    job = submit(session, CANCER, "diagnosis", budget=8)
    workers()
    wait_for(lambda: trials_done(session, job.id) >= 1, 60, "a first trial")
    assert runner.invoke(app, ["pause", str(job.id)]).exit_code == 0
    wait_for(lambda: state(session, job.id) == JobState.PAUSED, 15, "PAUSED")
    held = len(ledger.trials_of(job.id, session=session))
    time.sleep(2)
    assert len(ledger.trials_of(job.id, session=session)) == held
    assert runner.invoke(app, ["resume", str(job.id)]).exit_code == 0
    wait_for(lambda: state(session, job.id) == JobState.COMPLETED, 60,
             "completion after resume")
    assert len(ledger.trials_of(job.id, session=session)) > held
    states = [t.to_state for t in ledger.transitions_of(job.id, session=session)]
    assert states == ["PENDING", "RUNNING", "PAUSED", "RUNNING", "COMPLETED"]


@pytest.mark.slow  # real worker processes running searches
def test_a_killed_worker_leaves_a_failed_job_and_a_consistent_store(
        workers, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_WORKER_LOST_AFTER_S", "3")
    job = submit(session, CANCER, "diagnosis", budget=120)
    proc = workers()
    wait_for(lambda: state(session, job.id) == JobState.RUNNING, 60, "RUNNING")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    took = wait_for(lambda: bool(reap_lost_jobs(session=session))
                    or state(session, job.id) == JobState.FAILED, 60, "the reaper")
    assert took < 60
    assert state(session, job.id) == JobState.FAILED
    assert ledger.get_job(job.id, session=session).error.startswith("worker lost")
    sweep_orphan_artifacts(session=session)
    referenced = {v.artifact_path
                  for v in session.exec(ModelVersion.__table__.select()).all()}
    on_disk = {str(p.relative_to(get_settings().home))
               for p in (get_settings().artifact_dir / "models").rglob("*.skops")} \
        if (get_settings().artifact_dir / "models").exists() else set()
    assert on_disk <= referenced or on_disk == set()


@pytest.mark.slow  # real worker processes running searches
def test_two_workers_share_a_queue_and_never_run_a_job_twice(backend_db: Database,
                                                            workers) -> None:
    session = Session(backend_db.engine, expire_on_commit=False)
    jobs = [submit(session, CANCER, "diagnosis", budget=2, estimators=["linear"],
                   ensemble=False, name=f"m{i}") for i in range(4)]
    workers("--idle-exit", "4")
    workers("--idle-exit", "4")
    for job in jobs:
        wait_for(lambda j=job: state(session, j.id) == JobState.COMPLETED, 120,
                 f"job {job.id}")
    claims = {}
    for job in jobs:
        running = [t for t in ledger.transitions_of(job.id, session=session)
                   if t.to_state == JobState.RUNNING]
        assert len(running) == 1, "a job was claimed twice"
        claims[job.id] = running[0].reason
    assert len({reason.split("claimed by ")[1] for reason in claims.values()}) == 2, \
        "both workers should have taken jobs"
    session.close()


def test_a_schedule_fires_a_retrain_job(db: Database, session: Session) -> None:
    from datetime import timedelta

    from core.jobs.schedules import create_schedule, list_schedules

    result = runner.invoke(app, ["automl", str(CANCER), "--target", "diagnosis", "--budget",
                                 "2", "--estimators", "linear", "--no-ensemble"])
    assert result.exit_code == 0, result.output
    sched = create_schedule("breast_cancer", "02:00", session=session)
    due = sched.next_run_at  # (the row object itself is refreshed by later reads)
    assert due.hour == 2 and due.minute == 0
    assert fire_due(db) == []  # not due yet
    fired = fire_due(db, now=due)
    assert len(fired) == 1
    job = ledger.get_job(fired[0], session=session)
    assert (job.trigger, job.schedule_id, job.state) == ("schedule", sched.id, "PENDING")
    assert job.settings["estimators"] == ["linear"]  # the model's last settings
    assert fire_due(db, now=due) == []  # once per due time
    (after,) = list_schedules(session=session)
    assert after.next_run_at - due == timedelta(days=1)
    assert after.last_run_at == due


def test_bad_schedules_are_refused(home: Path) -> None:
    result = runner.invoke(app, ["schedule", "add", "nope", "02:00"])
    assert result.exit_code == 2 and "No model named 'nope'" in result.stderr
    runner.invoke(app, ["automl", str(CANCER), "--target", "diagnosis", "--budget", "2",
                        "--estimators", "linear"])
    result = runner.invoke(app, ["schedule", "add", "breast_cancer", "25:00"])
    assert result.exit_code == 2 and "not a time of day" in result.stderr


@pytest.mark.slow  # real worker processes running searches
def test_a_retrain_that_does_not_beat_production_is_not_promoted(db: Database,
                                                                 session: Session) -> None:
    from core.jobs.schedules import create_schedule

    runner.invoke(app, ["automl", str(CANCER), "--target", "diagnosis", "--budget", "2",
                        "--estimators", "linear", "--no-ensemble"])
    set_alias("breast_cancer", 1, "production", session=session)
    sched = create_schedule("breast_cancer", "02:00", session=session, auto_canary=True,
                            gate_min_abs=0.05)
    (job_id,) = fire_due(db, now=sched.next_run_at)
    assert job_worker(db).run(max_jobs=1) == 1
    job = ledger.get_job(job_id, session=session)
    assert job.state == JobState.COMPLETED
    assert job.gate["passed"] is False and "does not beat" in job.gate["reason"]
    assert job.gate["production_version"] == 1 and job.gate["action"] == "none"
    assert resolve("breast_cancer", session=session)[1].version == 1  # production untouched


def test_bad_input_fails_without_retry_and_transient_errors_back_off(
        session: Session) -> None:
    job = submit(session, CANCER, "diagnosis", budget=2)
    claimed = claim_next("w1", session=session)
    assert claimed.id == job.id and claimed.attempts == 1
    retry_or_fail(job.id, "OperationalError: database is locked", session=session)
    again = ledger.get_job(job.id, session=session)
    assert again.state == JobState.PENDING and again.not_before is not None
    assert claim_next("w1", session=session) is None  # backing off
    again.not_before = None
    session.add(again)
    session.commit()
    assert claim_next("w2", session=session).attempts == 2


@pytest.mark.slow  # real worker processes running searches
def test_a_retrain_that_passes_the_gate_enters_a_canary(db: Database,
                                                       session: Session) -> None:
    from core.deploy import get_state
    from core.jobs.schedules import create_schedule

    weak = DATA.parent / "data" / "breast_cancer.csv"
    runner.invoke(app, ["train", str(weak), "--target", "diagnosis", "--estimator", "knn",
                        "--param", "n_neighbors=200", "--name", "cancer"])
    runner.invoke(app, ["alias", "cancer", "1", "production"])
    sched = create_schedule("cancer", "02:00", session=session, auto_canary=True,
                            settings={"estimators": None, "params": None, "budget": 4})
    (job_id,) = fire_due(db, now=sched.next_run_at)
    assert job_worker(db).run(max_jobs=1) == 1
    job = ledger.get_job(job_id, session=session)
    assert job.gate["passed"] is True, job.gate
    state = get_state("cancer", session=session)
    assert (state.stable, state.candidate) == (1, 2) and state.percent == state.steps[0]


@pytest.mark.slow  # a real search
def test_a_foreground_run_heartbeats_so_no_reaper_takes_it_for_lost(
        db: Database, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_HEARTBEAT_S", "0.2")
    monkeypatch.setenv("WORKBENCH_WORKER_LOST_AFTER_S", "1")
    reaped: list[int] = []

    def progress(_state: training.Progress) -> None:
        time.sleep(0.5)  # a slow search, while a worker's reaper looks at the ledger
        reaped.extend(reap_lost_jobs(session=session))

    request = TrainingRequest.create(dataset=CANCER, target="diagnosis", budget=4,
                                     estimators=["linear"])
    outcome = training.run_training(db, request, progress=progress)
    assert reaped == [] and state(session, outcome.job_id) == JobState.COMPLETED
