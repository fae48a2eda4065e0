"""Experiment tracking: experiments group runs; a run (a training job, one trial of a search,
or a user's own) has params, metric histories, tags, artifacts and lineage.

Python: `with core.tracking.start_run(experiment="x") as run: run.log_params(...)`.
Readers (API, CLI, the Runs page) call `list_runs`, `get_run`, `compare_runs`,
`list_experiments`, `list_artifacts` and `read_artifact`; see docs/lifecycle/tracking.md."""

from core.tracking.artifacts import (
    artifact_file,
    list_artifacts,
    read_artifact,
    resolve_artifact,
    run_root,
    write_artifact,
)
from core.tracking.experiments import (
    create_experiment,
    ensure_experiment,
    experiment_public,
    get_experiment,
    list_experiments,
)
from core.tracking.fluent import ActiveRun, start_run
from core.tracking.runs import MetricPoint, create_run, end_run, log_to_run
from core.tracking.states import RunSource, RunStatus
from core.tracking.views import compare_runs, get_run, list_runs

__all__ = [
    "ActiveRun", "MetricPoint", "RunSource", "RunStatus", "artifact_file", "compare_runs",
    "create_experiment", "create_run", "end_run", "ensure_experiment", "experiment_public",
    "get_experiment", "get_run", "list_artifacts", "list_experiments", "list_runs",
    "log_to_run", "read_artifact", "resolve_artifact", "run_root", "start_run", "write_artifact",
]
