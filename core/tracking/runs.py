"""Runs: start one, log params, metric points and tags to it while it runs, end it.

Write functions lock the run's row (PostgreSQL) or take the store's write lock (SQLite) before
they look at its status, so concurrent loggers to one run each land every row, and nothing is
logged to a run that another caller just ended. Each validates everything it was given before
writing anything, and commits once."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, func, select

from core.errors import ConflictError, NotFoundError
from core.store import (
    Dataset,
    Job,
    ModelVersion,
    Run,
    RunLatestMetric,
    RunMetric,
    RunParam,
    RunTag,
    lock_for_write,
)
from core.store.scope import require_owned
from core.tracking import checks
from core.tracking.checks import BadInput
from core.tracking.experiments import ensure_experiment
from core.tracking.states import RunSource, RunStatus


@dataclass(frozen=True)
class MetricPoint:
    """A metric value to log; `step` None means one after the key's last step (0 at first)."""

    key: str
    value: float
    step: int | None = None
    timestamp: datetime | None = None


def create_run(*, session: Session, experiment: str, name: str | None = None,
               parent_run_id: int | None = None, source: RunSource = RunSource.USER,
               dataset_id: int | None = None, job_id: int | None = None,
               version_id: int | None = None, params: Mapping[str, Any] | None = None,
               tags: Mapping[str, Any] | None = None, commit: bool = True) -> Run:
    """A RUNNING run in `experiment` (created on first use). A child run names its parent,
    which must exist. Commits unless `commit=False` (a caller composing a unit of work)."""
    lock_for_write(session)
    _check_lineage(session, parent_run_id=parent_run_id, dataset_id=dataset_id, job_id=job_id,
                   version_id=version_id)
    exp = ensure_experiment(experiment, session=session)
    if name is not None and (not isinstance(name, str) or len(name) > 250 or "\x00" in name):
        raise BadInput(f"name: {name!r} is not a run name of at most 250 characters "
                       "(without NUL).")
    run = Run(experiment_id=exp.id, name=(name or "").strip(), status=RunStatus.RUNNING.value,
              source=RunSource(source).value, parent_run_id=parent_run_id,
              dataset_id=dataset_id, job_id=job_id, version_id=version_id)
    session.add(run)
    session.flush()
    if not run.name:
        run.name = f"run {run.id}"
    _write(session, run, params=params, metrics=(), tags=tags)
    if commit:
        session.commit()
    return run


_LINEAGE = {"parent_run_id": (Run, "List runs with GET /v1/runs or `workbench runs`."),
            "dataset_id": (Dataset, "List datasets with GET /v1/datasets or "
                                    "`workbench datasets`."),
            "job_id": (Job, "List jobs with GET /v1/jobs or `workbench jobs`."),
            "version_id": (ModelVersion, "")}


def _check_lineage(session: Session, **ids: int | None) -> None:
    """Every id a run names must be an object of the caller's workspace: another workspace's
    id is refused exactly as an absent one (404), so a run can neither point across
    workspaces nor reveal that the id exists."""
    for field, ident in ids.items():
        if ident is not None:
            table, hint = _LINEAGE[field]
            require_owned(session, table, ident, field, hint)


def log_to_run(run_id: int, *, session: Session, params: Mapping[str, Any] | None = None,
               metrics: Iterable[MetricPoint] = (), tags: Mapping[str, Any] | None = None,
               allow_ended: bool = False, commit: bool = True) -> Run:
    """Log to a RUNNING run (ConflictError once it has ended, unless `allow_ended`, which only
    the job hook uses to add a registered version's metrics). A parameter is logged once: the
    same value again is a no-op, another value is refused (ConflictError naming both)."""
    run = locked_run(run_id, session=session)
    if run.status != RunStatus.RUNNING and not allow_ended:
        session.rollback()
        raise ConflictError(f"Run {run_id} is {run.status}: an ended run takes no more params, "
                            "metrics or tags. Start a new run to log more.")
    try:
        _write(session, run, params=params, metrics=metrics, tags=tags)
    except BaseException:
        session.rollback()
        raise
    if commit:
        session.commit()
    return run


def end_run(run_id: int, status: RunStatus | str = RunStatus.FINISHED, *, session: Session,
            end_time: datetime | None = None, commit: bool = True) -> Run:
    """End a RUNNING run as FINISHED, FAILED or KILLED; ConflictError when it has ended."""
    try:
        status = RunStatus(status)
    except ValueError:
        raise BadInput(f"status: {status!r} is not one of FINISHED, FAILED, KILLED.") from None
    if not status.is_terminal:
        raise BadInput("status: a run ends FINISHED, FAILED or KILLED, not RUNNING.")
    run = locked_run(run_id, session=session)
    if run.status != RunStatus.RUNNING:
        session.rollback()
        raise ConflictError(f"Run {run_id} has ended already ({run.status}).")
    run.status, run.end_time = status.value, checks.aware(end_time, "end_time")
    session.add(run)
    if commit:
        session.commit()
    return run


def locked_run(run_id: int, *, session: Session) -> Run:
    """The run, its row locked for this unit of work (NotFoundError when there is none)."""
    lock_for_write(session)
    run = session.exec(select(Run).where(Run.id == run_id).with_for_update()
                       .execution_options(populate_existing=True)).first()
    if run is None:
        raise NotFoundError(f"No run {run_id}. List runs with GET /v1/runs or "
                            "`workbench runs`.")
    return run


def get_run_row(run_id: int, *, session: Session) -> Run:
    run = session.get(Run, run_id, populate_existing=True)
    if run is None:
        raise NotFoundError(f"No run {run_id}. List runs with GET /v1/runs or "
                            "`workbench runs`.")
    return run


def _write(session: Session, run: Run, *, params: Mapping[str, Any] | None,
           metrics: Iterable[MetricPoint], tags: Mapping[str, Any] | None) -> None:
    """Validate all, then add all (no flush in between: a refusal leaves nothing behind)."""
    metrics = list(metrics)
    checks.check_batch("params", params or {}, checks.PARAMS_PER_CALL)
    checks.check_batch("metrics", metrics, checks.METRICS_PER_CALL)
    checks.check_batch("tags", tags or {}, checks.TAGS_PER_CALL)
    new_params = _checked_params(session, run.id, params or {})
    points = [(checks.check_key(m.key, "metrics"), m) for m in metrics]
    values = [(key, checks.metric_value(key, m.value),
               None if m.step is None else checks.metric_step(key, m.step),
               checks.aware(m.timestamp, f"metrics.{key}.timestamp")) for key, m in points]
    new_tags = {checks.check_key(k, "tags"): checks.tag_text(k, v) for k, v in
                (tags or {}).items()}
    for key, text in new_params.items():
        session.add(RunParam(run_id=run.id, key=key, value=text, value_num=checks.as_number(text)))
    latest: dict[str, RunLatestMetric] = {}
    next_step: dict[str, int] = {}
    for key, value, step, at in values:
        if step is None:
            if key not in next_step:
                last = session.exec(select(func.max(RunMetric.step)).where(
                    RunMetric.run_id == run.id, RunMetric.key == key)).one()
                next_step[key] = 0 if last is None else last + 1
            step = next_step[key]
        next_step[key] = max(next_step.get(key, 0), step + 1)
        session.add(RunMetric(run_id=run.id, key=key, value=value, step=step, timestamp=at))
        row = latest.get(key) or session.get(RunLatestMetric, (run.id, key))
        if row is None:
            row = RunLatestMetric(run_id=run.id, key=key, value=value, step=step, timestamp=at)
        elif (step, at) >= (row.step, checks.aware(row.timestamp)):
            row.value, row.step, row.timestamp = value, step, at
        latest[key] = row
        session.add(row)
    for key, text in new_tags.items():
        row = session.get(RunTag, (run.id, key))
        if row is None:
            session.add(RunTag(run_id=run.id, key=key, value=text))
        elif row.value != text:
            row.value = text
            session.add(row)
    if new_params or values or new_tags:
        session.flush()


def _checked_params(session: Session, run_id: int, params: Mapping[str, Any]) -> dict[str, str]:
    given = {checks.check_key(k, "params"): checks.param_text(k, v) for k, v in params.items()}
    if not given:
        return {}
    stored = {p.key: p.value for p in session.exec(
        select(RunParam).where(RunParam.run_id == run_id, RunParam.key.in_(list(given))))}
    clash = {k: (stored[k], v) for k, v in given.items() if k in stored and stored[k] != v}
    if clash:
        detail = "; ".join(f"{k}: logged {old!r}, now {new!r}" for k, (old, new) in clash.items())
        raise ConflictError(f"params are logged once per run and cannot change ({detail}). "
                            "Log the new value in a new run, or as a metric or tag.")
    return {k: v for k, v in given.items() if k not in stored}
