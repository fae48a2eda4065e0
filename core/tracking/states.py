"""The closed sets of tracking: a run's status and where a run came from."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """MLflow's run statuses: a run is RUNNING until it ends FINISHED, FAILED or KILLED."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @property
    def is_terminal(self) -> bool:
        return self is not RunStatus.RUNNING


class RunSource(StrEnum):
    """What made the run: a training job, one trial of a job's search, or a user's logging."""

    JOB = "job"
    TRIAL = "trial"
    USER = "user"


# how a run of a training job ends, by the job's final state (core.jobs.states.JobState)
STATUS_OF_JOB_STATE: dict[str, RunStatus] = {
    "COMPLETED": RunStatus.FINISHED, "FAILED": RunStatus.FAILED, "CANCELLED": RunStatus.KILLED}
