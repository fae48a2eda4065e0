"""The job ledger only moves along allowed transitions and records every one."""

from __future__ import annotations

import pytest

from core.errors import ConflictError
from core.jobs import ledger


def test_transitions_are_guarded_and_recorded(backend: str) -> None:
    job = ledger.create_job(model_name="m", target="y", task="auto", metric="auto")
    ledger.transition(job.id, ledger.RUNNING, "picked up")
    ledger.transition(job.id, ledger.COMPLETED, "done")
    with pytest.raises(ConflictError, match="is COMPLETED and cannot become RUNNING"):
        ledger.transition(job.id, ledger.RUNNING)
    states = [(t.from_state, t.to_state) for t in ledger.transitions_of(job.id)]
    assert states == [(None, "PENDING"), ("PENDING", "RUNNING"), ("RUNNING", "COMPLETED")]
    finished = ledger.get_job(job.id)
    assert finished.finished_at is not None and finished.started_at is not None


def test_a_failed_job_keeps_its_reason(backend: str) -> None:
    job = ledger.create_job(model_name="m", target="y", task="auto", metric="auto",
                            state=ledger.RUNNING)
    ledger.transition(job.id, ledger.FAILED, "worker lost")
    assert ledger.get_job(job.id).error == "worker lost"
