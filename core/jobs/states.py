"""The closed sets of the job ledger: job states (with the allowed moves as data), triggers,
job kinds and trial states.

All are `StrEnum`s stored by value, so the strings in the database, on the wire and in old
rows are the ones they always were; a stored `str` compares equal to its member.
"""

from __future__ import annotations

from enum import StrEnum


class JobState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def is_terminal(self) -> bool:
        """Finished for good: no transition leaves this state."""
        return not TRANSITIONS[self]

    @property
    def is_live(self) -> bool:
        """Held by a process that heartbeats (a worker or a foreground run)."""
        return self in LIVE

    @property
    def is_active(self) -> bool:
        """Queued or in progress: what "one job per model at a time" counts."""
        return not self.is_terminal

    def can_become(self, other: JobState) -> bool:
        return other in TRANSITIONS[self]


TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.RUNNING, JobState.CANCELLED}),
    JobState.RUNNING: frozenset({JobState.COMPLETED, JobState.FAILED, JobState.CANCELLED,
                                 JobState.PAUSED, JobState.PENDING}),
    JobState.PAUSED: frozenset({JobState.RUNNING, JobState.PENDING, JobState.CANCELLED}),
    JobState.COMPLETED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}
LIVE = frozenset({JobState.RUNNING, JobState.PAUSED})
TERMINAL = frozenset(s for s in JobState if not TRANSITIONS[s])
ACTIVE = frozenset(JobState) - TERMINAL


class Trigger(StrEnum):
    """Who asked for the job."""

    MANUAL = "manual"      # the CLI or the Train page
    API = "api"            # POST /v1/jobs, a retrain asked for by a person or a client
    SCHEDULE = "schedule"  # a retraining schedule came due
    ALERT = "alert"        # an alert with retrain_on_alert

    @property
    def is_gated(self) -> bool:
        """A retrain whose version must beat production before anything else happens."""
        return self is not Trigger.MANUAL


class JobKind(StrEnum):
    SEARCH = "search"  # a search over estimators and hyperparameters
    FIXED = "fixed"    # one given configuration (`workbench train`)
