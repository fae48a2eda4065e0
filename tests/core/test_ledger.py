"""The job ledger only moves along allowed transitions and records every one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlmodel import Session

from core.errors import ConflictError
from core.jobs import ledger
from core.jobs.states import TERMINAL, TRANSITIONS, JobState, Trigger
from core.store import Database


@pytest.fixture
def s(backend_db: Database) -> Iterator[Session]:
    with Session(backend_db.engine, expire_on_commit=False) as session:
        yield session


def test_transitions_are_guarded_and_recorded(s: Session) -> None:
    job = ledger.create_job(session=s, model_name="m", target="y", task="auto",
                            metric="auto")
    ledger.transition(job.id, JobState.RUNNING, "picked up", session=s)
    ledger.transition(job.id, JobState.COMPLETED, "done", session=s)
    with pytest.raises(ConflictError, match="is COMPLETED and cannot become RUNNING"):
        ledger.transition(job.id, JobState.RUNNING, session=s)
    states = [(t.from_state, t.to_state) for t in ledger.transitions_of(job.id, session=s)]
    assert states == [(None, "PENDING"), ("PENDING", "RUNNING"), ("RUNNING", "COMPLETED")]
    finished = ledger.get_job(job.id, session=s)
    assert finished.finished_at is not None and finished.started_at is not None


def test_a_failed_job_keeps_its_reason(s: Session) -> None:
    job = ledger.create_job(session=s, model_name="m", target="y", task="auto",
                            metric="auto", state=JobState.RUNNING)
    ledger.transition(job.id, JobState.FAILED, "worker lost", session=s)
    assert ledger.get_job(job.id, session=s).error == "worker lost"


def test_the_state_machine_is_data_and_stored_values_never_change() -> None:
    assert {s for s in JobState if s.is_terminal} == TERMINAL == {
        JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED}
    assert all(not TRANSITIONS[s] for s in TERMINAL)
    assert JobState.PENDING.can_become(JobState.RUNNING)
    assert not JobState.PENDING.can_become(JobState.PAUSED)
    assert {s for s in JobState if s.is_live} == {JobState.RUNNING, JobState.PAUSED}
    assert [s.value for s in JobState] == ["PENDING", "RUNNING", "PAUSED", "COMPLETED",
                                           "FAILED", "CANCELLED"]
    assert [t.value for t in Trigger] == ["manual", "api", "schedule", "alert"]
    assert {t for t in Trigger if t.is_gated} == {Trigger.API, Trigger.SCHEDULE, Trigger.ALERT}


def test_a_refused_move_rolls_back_and_holds_no_lock(db: Database, session: Session) -> None:
    """A writer that refuses leaves nothing half-done and the store writable by others."""
    job = ledger.create_job(session=session, model_name="m", target="y", task="auto",
                            metric="auto")
    with pytest.raises(ConflictError):
        ledger.request_pause(job.id, True, session=session)
    with db.session() as other:  # another connection writes at once (no busy wait)
        ledger.transition(job.id, JobState.CANCELLED, "by another", session=other)
    assert ledger.get_job(job.id, session=session).state == JobState.CANCELLED


def test_readers_see_a_job_in_the_shape_of_the_contract(session: Session) -> None:
    """`jobs --json`, GET /v1/jobs and the pages read `JobPublic`: the keys and JSON values
    the job documents always had."""
    from core.jobs.views import read_job_detail, read_jobs

    job = ledger.create_job(session=session, model_name="m", target="y", task="binary",
                            metric="roc_auc", settings={"budget": 3.0})
    ledger.transition(job.id, JobState.RUNNING, "go", session=session)
    (doc,) = [j.model_dump(mode="json") for j in read_jobs(session=session)]
    assert list(doc) == ["id", "state", "kind", "trigger", "model", "target", "task", "metric",
                         "settings", "progress", "trials", "best", "version_id", "attempts",
                         "cpu_seconds", "peak_memory_mb", "cancel_requested",
                         "pause_requested", "gate", "error", "created_at", "started_at",
                         "finished_at"]
    assert (doc["state"], doc["kind"], doc["trigger"], doc["model"]) == (
        "RUNNING", "search", "manual", "m")
    row = ledger.get_job(job.id, session=session)
    assert doc["started_at"] == row.started_at.isoformat() and doc["finished_at"] is None
    detail = read_job_detail(job.id, session=session).model_dump(mode="json", by_alias=True)
    assert [(t["from"], t["to"]) for t in detail["transitions"]] == [(None, "PENDING"),
                                                                    ("PENDING", "RUNNING")]
