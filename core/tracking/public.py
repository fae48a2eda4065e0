"""What readers see of experiments and runs: one shape each for the API (`response_model=`),
the CLI (`--json`) and the Runs page."""

from __future__ import annotations

from pydantic import BaseModel, Field

from core.public import FROZEN, IsoDatetime
from core.tracking.states import RunSource, RunStatus


class ExperimentPublic(BaseModel):
    """A named group of runs."""

    model_config = FROZEN

    id: int
    name: str
    description: str
    created_at: IsoDatetime
    runs: int = Field(description="Runs in the experiment (child runs included).")
    last_run_at: IsoDatetime | None = Field(description="When its newest run started.")


class MetricPoint(BaseModel):
    """One point of a metric's history."""

    model_config = FROZEN

    step: int
    value: float
    timestamp: IsoDatetime


class RunPublic(BaseModel):
    """A run: status, times, lineage, and its params, latest metric values and tags."""

    model_config = FROZEN

    id: int
    experiment: str
    name: str
    status: RunStatus
    source: RunSource = Field(description="job (a training job), trial (one candidate of a "
                                          "job's search: a child run) or user.")
    start_time: IsoDatetime
    end_time: IsoDatetime | None
    duration_s: float | None = Field(description="end - start, None while running.")
    parent_run_id: int | None
    dataset_id: int | None
    job_id: int | None
    version_id: int | None = Field(description="The registered version the run produced.")
    params: dict[str, str]
    metrics: dict[str, float] = Field(description="Each metric's latest value (highest step).")
    tags: dict[str, str]


class RunDetailPublic(RunPublic):
    """A run with every metric's full history and its child runs."""

    metric_history: dict[str, list[MetricPoint]]
    child_run_ids: list[int]


class RunPage(BaseModel):
    """One page of a run listing; `next_offset` is None on the last page."""

    model_config = FROZEN

    runs: list[RunPublic]
    total: int = Field(description="Runs matching the filters, over all pages.")
    limit: int
    offset: int
    next_offset: int | None


class ComparedParam(BaseModel):
    """One parameter across the compared runs, in the order the runs were asked for."""

    model_config = FROZEN

    key: str
    values: list[str | None] = Field(description="None where a run did not log it.")
    differs: bool


class ComparedMetric(BaseModel):
    """One metric's latest value across the compared runs."""

    model_config = FROZEN

    key: str
    values: list[float | None]
    differs: bool


class RunComparison(BaseModel):
    """Runs side by side: `values[i]` of every row belongs to `runs[i]`."""

    model_config = FROZEN

    runs: list[RunPublic]
    params: list[ComparedParam]
    metrics: list[ComparedMetric]


class ArtifactPublic(BaseModel):
    """One file under a run's artifact root."""

    model_config = FROZEN

    path: str = Field(description="Relative to the run's root, '/'-separated.")
    size_bytes: int
