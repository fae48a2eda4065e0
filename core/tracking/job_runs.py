"""Every training job is a run: the hook `core.usecases.training` calls at a job's start, after
each trial and at its end.

- start: the job's run (experiment = the model's name) is RUNNING, with the request's settings
  as params; a retried job's run is the same run, RUNNING again;
- each trial: a child run with the estimator and its params, the CV score as the metric named
  like the job's metric (plus `<metric>_std`, fit and predict times), FINISHED / KILLED (pruned)
  / FAILED; the search's best score so far is a point of the job run's metric at step = the
  trial's number;
- end: FINISHED with the registered version linked (its params and metrics added), KILLED when
  cancelled, FAILED on an error; artifacts written before the status shows: the pipeline,
  leaderboard.csv, evaluation.json, plots/*.png and job.log.
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any, Protocol, TypeVar

from sqlmodel import Session, select

from core.errors import InputError, StorageUnavailableError
from core.store import Database, Job, ModelVersion, Run, RunMetric, Trial, lock_for_write, utcnow
from core.tracking import artifacts, plots
from core.tracking.checks import TAG_VALUE_MAX, as_text, check_key
from core.tracking.runs import MetricPoint, create_run, log_to_run
from core.tracking.states import STATUS_OF_JOB_STATE, RunSource, RunStatus

log = logging.getLogger("workbench.tracking")
TRIAL_STATUS = {"ok": RunStatus.FINISHED, "pruned": RunStatus.KILLED, "failed": RunStatus.FAILED}


class _Outcome(Protocol):
    """What `core.usecases.training.execute` returns (RunOutcome), as far as a run needs it."""

    @property
    def version(self) -> ModelVersion: ...


F = TypeVar("F", bound=Callable[..., Any])


def tracked(execute: F) -> F:
    """Wrap `execute(db, job_id, ...)` so the job is a run from start to end: an outcome is
    FINISHED, None (cancelled) KILLED, an exception FAILED (Ctrl-C KILLED) and goes on."""

    @wraps(execute)
    def run(db: Database, job_id: int, *args: Any, **kwargs: Any) -> Any:
        job_started(db, job_id)
        try:
            outcome = execute(db, job_id, *args, **kwargs)
        except BaseException as exc:
            job_ended(db, job_id, RunStatus.FAILED if isinstance(exc, Exception)
                      else RunStatus.KILLED)
            raise
        job_ended(db, job_id, RunStatus.KILLED if outcome is None else RunStatus.FINISHED,
                  version_id=None if outcome is None else outcome.version.id)
        return outcome

    return run  # type: ignore[return-value]


def job_run(job_id: int, *, session: Session) -> Run | None:
    """The run of a training job (not its trials' child runs)."""
    return session.exec(select(Run).where(Run.job_id == job_id, Run.source == RunSource.JOB)
                        .order_by(Run.id).execution_options(populate_existing=True)).first()


def job_started(db: Database, job_id: int) -> int:
    with db.session() as s:
        lock_for_write(s)
        job = s.get(Job, job_id)
        assert job is not None, job_id
        run = job_run(job_id, session=s)
        if run is None:
            run = create_run(session=s, experiment=job.model_name, name=f"job {job_id}",
                             source=RunSource.JOB, dataset_id=job.dataset_id, job_id=job_id,
                             params=_valid(_job_params(job)), commit=False,
                             tags={"model": job.model_name, "trigger": job.trigger,
                                   "job.kind": job.kind})
        elif run.status != RunStatus.RUNNING:  # a retry of the job: the same run goes on
            run.status, run.end_time = RunStatus.RUNNING.value, None
            s.add(run)
        return run.id


def trial_finished(trial: Trial, *, session: Session, best: float | None,
                   seconds: float | None = None) -> None:
    """The trial as a child run, and the best score so far on the job's run (committed by the
    caller's unit of work)."""
    parent = job_run(trial.job_id, session=session)
    if parent is None:
        return
    experiment = parent.experiment_id
    end = utcnow()
    start = end - timedelta(seconds=seconds) if seconds else end
    child = create_run(session=session, experiment=_experiment_name(session, experiment),
                       name=f"trial {trial.number} · {trial.estimator}", parent_run_id=parent.id,
                       source=RunSource.TRIAL, dataset_id=parent.dataset_id,
                       job_id=trial.job_id, commit=False,
                       params=_valid({"estimator": trial.estimator, **(trial.params or {})}),
                       tags=_valid({"trial.number": trial.number, "trial.status": trial.status,
                                    **({"trial.reason": trial.reason[:5000]}
                                       if trial.reason else {})}))
    child.start_time = start
    scores = {trial.metric: trial.cv_mean, f"{trial.metric}_std": trial.cv_std,
              "fit_time_s": trial.fit_time_s, "predict_ms_per_1k": trial.predict_ms_per_1k}
    log_to_run(child.id, session=session, commit=False,
               metrics=[MetricPoint(k, v, 0, end) for k, v in scores.items() if v is not None])
    child.status, child.end_time = TRIAL_STATUS.get(trial.status, RunStatus.FAILED).value, end
    session.add(child)
    if best is not None:
        log_to_run(parent.id, session=session, commit=False,
                   metrics=[MetricPoint(trial.metric, best, trial.number, end)])


def job_ended(db: Database, job_id: int, status: RunStatus, *,
              version_id: int | None = None) -> None:
    """Artifacts first, then the status: whoever sees the run ended sees its files."""
    with db.session() as s:
        run = job_run(job_id, session=s)
        job = s.get(Job, job_id)
        if run is None or job is None or run.status != RunStatus.RUNNING:
            return
        version = s.get(ModelVersion, version_id) if version_id is not None else None
        trials = list(s.exec(select(Trial).where(Trial.job_id == job_id).order_by(Trial.number)))
        run_id = run.id
    _write_artifacts(run_id, job, trials, version)
    with db.session() as s:
        run = s.get(Run, run_id, populate_existing=True)
        lock_for_write(s)
        if version is not None:
            _log_version(s, run, job, version)
        run.status, run.end_time = status.value, utcnow()
        s.add(run)


def close_runs_of_ended_jobs(*, session: Session) -> int:
    """End the RUNNING runs whose job ended without its worker ending them (a worker killed,
    then reaped: the job FAILED, its run would stay RUNNING). Commits; returns how many."""
    query = select(Run, Job.state).join(Job, Job.id == Run.job_id).where(
        Run.source == RunSource.JOB, Run.status == RunStatus.RUNNING,
        Job.state.in_(list(STATUS_OF_JOB_STATE)))
    if session.exec(query.limit(1)).first() is None:  # the usual case: no write lock taken
        return 0
    lock_for_write(session)
    stale = session.exec(query.execution_options(populate_existing=True)).all()
    for run, state in stale:
        run.status = STATUS_OF_JOB_STATE[state].value
        run.end_time = utcnow()
        session.add(run)
    session.commit()
    return len(stale)


def _log_version(s: Session, run: Run, job: Job, version: ModelVersion) -> None:
    """The registered version on the job's run: the winner's estimator and params, and its
    metrics at the search's last step (the job's own metric only when the final model's score
    differs from the best single trial: an ensemble)."""
    run.version_id = version.id
    last = s.exec(select(RunMetric).where(RunMetric.run_id == run.id, RunMetric.key == job.metric)
                  .order_by(RunMetric.step.desc())).first()
    step = last.step if last is not None else 0
    points = [MetricPoint(k, v, step) for k, v in (version.metrics or {}).items()
              if k != job.metric and isinstance(v, int | float) and _ok_key(k)]
    if version.score is not None and (last is None or last.value != version.score):
        points.append(MetricPoint(job.metric, version.score, step + (last is not None)))
    stored = {**_job_params(job)}
    winner = {k: v for k, v in {"estimator": version.estimator, **(version.params or {})}.items()
              if k not in stored}
    try:
        log_to_run(run.id, session=s, params=_valid(winner), metrics=points, allow_ended=True,
                   tags={"version": f"{job.model_name}:{version.version}"}, commit=False)
    except InputError as exc:  # e.g. a non-finite metric of a degenerate model
        log.warning("run %d: version %s not fully logged: %s", run.id, version.id, exc)


def _write_artifacts(run_id: int, job: Job, trials: list[Trial],
                     version: ModelVersion | None) -> None:
    """Best effort: a full disk must not turn a registered model's job into a failure."""
    try:
        artifacts.write_artifact(run_id, "leaderboard.csv", _leaderboard(trials))
        artifacts.write_artifact(run_id, "job.log", (job.log or "").encode())
        if version is None:
            return
        artifacts.link_artifact(run_id, f"model.{version.artifact_format or 'skops'}",
                                version.artifact_path)
        evaluation = {k: v for k, v in (version.evaluation or {}).items() if k != "reference"}
        artifacts.write_artifact(run_id, "evaluation.json",
                                 json.dumps(evaluation, indent=1, default=str).encode())
        for name, png in _plots(job, trials, evaluation).items():
            artifacts.write_artifact(run_id, f"plots/{name}.png", png)
    except (OSError, StorageUnavailableError) as exc:
        log.warning("run %d: artifacts not written: %s", run_id, exc)


def _leaderboard(trials: list[Trial]) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["number", "estimator", "status", "metric", "cv_mean", "cv_std", "fit_time_s",
                "predict_ms_per_1k", "params", "reason"])
    for t in trials:
        w.writerow([t.number, t.estimator, t.status, t.metric, t.cv_mean, t.cv_std,
                    t.fit_time_s, t.predict_ms_per_1k, json.dumps(t.params, sort_keys=True),
                    t.reason])
    return out.getvalue().encode()


def _plots(job: Job, trials: list[Trial], evaluation: dict[str, Any]) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    scored = [(t.number, t.cv_mean) for t in trials if t.cv_mean is not None]
    if scored:
        lower = job.metric in {"log_loss", "rmse", "mae", "mse", "mape"}
        best, running = [], None
        for _, v in scored:
            running = v if running is None else (min if lower else max)(running, v)
            best.append(running)
        xs = [float(n) for n, _ in scored]
        out["search"] = plots.line_chart(
            [("trial", xs, [v for _, v in scored]), ("best so far", xs, best)],
            title=f"{job.model_name}: {job.metric} by trial", x_label="trial",
            y_label=job.metric, points=True)
    roc, pr = evaluation.get("roc_curve") or {}, evaluation.get("pr_curve") or {}
    if roc.get("fpr") and roc.get("tpr"):
        out["roc_curve"] = plots.line_chart([("ROC", roc["fpr"], roc["tpr"])],
                                            title="ROC curve (out-of-fold)",
                                            x_label="false positive rate",
                                            y_label="true positive rate", unit_square=True)
    if pr.get("recall") and pr.get("precision"):
        out["pr_curve"] = plots.line_chart([("PR", pr["recall"], pr["precision"])],
                                           title="Precision-recall (out-of-fold)",
                                           x_label="recall", y_label="precision",
                                           unit_square=True)
    return out


def _job_params(job: Job) -> dict[str, Any]:
    settings = {k: v for k, v in (job.settings or {}).items() if v is not None}
    return {"kind": job.kind, "target": job.target, "task": job.task, "metric": job.metric,
            **settings}


def _ok_key(key: Any) -> bool:
    try:
        check_key(key, "key")
    except InputError:
        return False
    return True


def _valid(values: dict[str, Any], limit: int = TAG_VALUE_MAX) -> dict[str, str]:
    """Only names the tracking rules take, values cut to size: a stored setting never fails a
    job's run."""
    return {k: as_text(v)[:limit] for k, v in values.items() if _ok_key(k)}


def _experiment_name(session: Session, experiment_id: int) -> str:
    from core.store import Experiment

    exp = session.get(Experiment, experiment_id)
    assert exp is not None
    return exp.name
