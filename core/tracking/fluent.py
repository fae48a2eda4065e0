"""`start_run`: log a run from Python, as MLflow users do.

    with core.tracking.start_run(experiment="churn", name="baseline") as run:
        run.log_params({"max_depth": 3})
        run.log_metric("val_loss", 0.41, step=1)

The block's outcome ends the run: normally FINISHED, an exception FAILED, Ctrl-C KILLED (the
exception goes on). Without a `db` the default store (WORKBENCH_HOME / DATABASE_URL) is
opened as the adapters' composition roots open it, and closed after the block."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from core.store import Database
from core.tracking import artifacts, runs
from core.tracking.checks import BadInput
from core.tracking.public import ArtifactPublic, RunDetailPublic
from core.tracking.states import RunStatus
from core.tracking.views import get_run


class ActiveRun:
    """A RUNNING run to log to; each call is one short unit of work of its own, so several
    threads may log to one run at once."""

    def __init__(self, db: Database, run_id: int) -> None:
        self.db, self.run_id = db, run_id

    def log_params(self, params: Mapping[str, Any]) -> None:
        with self.db.session() as s:
            runs.log_to_run(self.run_id, session=s, params=params)

    def log_param(self, key: str, value: Any) -> None:
        self.log_params({key: value})

    def log_metric(self, key: str, value: float, step: int | None = None, *,
                   timestamp: datetime | None = None) -> None:
        """One point; `step` None is one after the key's last step (0 for the first)."""
        self.log_metrics({key: value}, step=step, timestamp=timestamp)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None, *,
                    timestamp: datetime | None = None) -> None:
        points = [runs.MetricPoint(k, v, step, timestamp) for k, v in metrics.items()]
        with self.db.session() as s:
            runs.log_to_run(self.run_id, session=s, metrics=points)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        with self.db.session() as s:
            runs.log_to_run(self.run_id, session=s, tags=tags)

    def set_tag(self, key: str, value: Any) -> None:
        self.set_tags({key: value})

    def log_artifact(self, data: str | Path | bytes, name: str | None = None) -> ArtifactPublic:
        """Store a file (a path) or bytes under the run; `name` defaults to the file's name."""
        if isinstance(data, str):
            data = Path(data)
        if name is None:
            if not isinstance(data, Path):
                raise BadInput("name: bytes need a name to be stored under.")
            name = data.name
        with self.db.session() as s:
            runs.get_run_row(self.run_id, session=s)
        return artifacts.write_artifact(self.run_id, name, data)

    def read(self) -> RunDetailPublic:
        """The run as stored now (params, metric histories, tags)."""
        with self.db.session() as s:
            return get_run(self.run_id, session=s)


@contextmanager
def start_run(experiment: str = "Default", name: str | None = None, *,
              db: Database | None = None, parent_run_id: int | None = None,
              tags: Mapping[str, Any] | None = None,
              params: Mapping[str, Any] | None = None) -> Iterator[ActiveRun]:
    """Start a run in `experiment` (created on first use) and end it with the block."""
    own = db is None
    store = db if db is not None else Database()
    try:
        with store.session() as s:
            run = runs.create_run(session=s, experiment=experiment, name=name,
                                  parent_run_id=parent_run_id, tags=tags, params=params)
        active = ActiveRun(store, run.id)
        try:
            yield active
        except BaseException as exc:
            status = RunStatus.FAILED if isinstance(exc, Exception) else RunStatus.KILLED
            _end(store, run.id, status)
            raise
        _end(store, run.id, RunStatus.FINISHED)
    finally:
        if own:
            store.dispose()


def _end(db: Database, run_id: int, status: RunStatus) -> None:
    with db.session() as s:
        run = runs.get_run_row(run_id, session=s)
        if run.status == RunStatus.RUNNING:  # the block may have ended it itself (REST)
            runs.end_run(run_id, status, session=s)
