"""Training as use cases: queue a `TrainingRequest` as a job, execute a claimed job (search,
register the winner, mark it COMPLETED), or both in the foreground.

The CLI (foreground), the job worker (background), the API, the Train page and retraining all
go through `submit` and `execute`, so every path records the same ledger rows, trials and
lineage. Queueing takes the caller's session; executing takes the `Database`, since a search
records each trial as it finishes, in a unit of work of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from sqlmodel import Session

from core.automl.backtest import backtest
from core.automl.catalog import check_search_space, get_spec
from core.automl.preflight import check_shape, preflight
from core.automl.request import TrainingRequest
from core.automl.search import SearchCancelled, SearchResult, TrialResult, run_search
from core.automl.train import TrainingData, prepare
from core.data.datasets import get_dataset, load_frame, store_frame
from core.data.ingest import read_path
from core.enums import TrialState
from core.errors import InputError
from core.features.targets import MarketTable, market_table
from core.jobs import ledger
from core.jobs.control import Heartbeat
from core.jobs.states import JobKind, JobState, Trigger
from core.monitor.reference import build_reference
from core.registry import check_model_name, register_version
from core.settings import get_settings
from core.store import Database, Dataset, Job, ModelVersion
from core.tracking.job_runs import tracked, trial_finished

log = logging.getLogger("workbench.job")


@dataclass(frozen=True)
class Progress:
    """The state of a running search, after each trial (what the CLI's bar shows)."""

    trials_done: int
    metric: str
    best_score: float | None
    last_estimator: str
    budget_s: float


ProgressFn = Callable[[Progress], None]


@dataclass
class RunOutcome:
    job_id: int
    model: str
    version: ModelVersion
    result: SearchResult
    dataset: Dataset


@dataclass(frozen=True)
class PreparedJob:
    """A request that passed every check, its uploaded data stored: the fields of the job
    to queue (`ledger.create_job`)."""

    model_name: str
    target: str
    task: str
    metric: str
    kind: JobKind
    dataset_id: int
    settings: dict[str, Any] = field(default_factory=dict)


def prepare_job(request: TrainingRequest, *, session: Session,
                actor: str | None = None) -> PreparedJob:
    """Check a request against its data completely, then store an uploaded file (committed
    on `session`, a unit of work of its own): nothing is written when the data, target,
    task, metric, estimator or parameters are wrong.

    `market` requests turn a price table into indicator features plus a forward target built
    from the price column `target`, validated walk-forward, with a backtest."""
    source = request.dataset
    if isinstance(source, Path):
        read = read_path(source, max_bytes=get_settings().max_upload_bytes)
        frame, default_name = read.frame, source.stem
    else:
        ds = get_dataset(source, session=session)
        frame, default_name = load_frame(ds), ds.name
    model_name = check_model_name(request.name or default_name)
    data, _ = _prepare(frame, request)
    for key in request.estimators or ():
        get_spec(key, data.task)
    check_search_space(request.space_overrides(), data.task, request.estimators)
    if request.params is not None:  # refuses unknown parameter names
        get_spec(request.estimators[0], data.task).make(data.task, request.params)
    if isinstance(source, Path):
        ds = store_frame(frame, session=session, name=source.stem,
                         fingerprint=read.fingerprint, source_filename=source.name,
                         actor=actor, notes=read.notes).dataset
    return PreparedJob(model_name=model_name, target=request.target, task=data.task,
                       metric=data.metric.name,
                       kind=JobKind.SEARCH if request.is_search else JobKind.FIXED,
                       dataset_id=ds.id, settings=request.settings())


def submit(request: TrainingRequest, *, session: Session, trigger: Trigger = Trigger.MANUAL,
           schedule_id: int | None = None, actor: str | None = None,
           state: JobState = JobState.PENDING) -> Job:
    """Validate a training request completely, then store its dataset and queue the job."""
    prepared = prepare_job(request, session=session, actor=actor)
    return ledger.create_job(session=session, **asdict(prepared), state=state,
                             trigger=trigger, schedule_id=schedule_id, actor=actor)


def submit_once(request: TrainingRequest, *, session: Session, trigger: Trigger,
                actor: str | None = None) -> tuple[Job, bool]:
    """`submit`, unless a job of the model is already pending, running or paused: then
    (that job, False)."""
    prepared = prepare_job(request, session=session, actor=actor)
    return ledger.create_job_once(session=session, **asdict(prepared), trigger=trigger,
                                  actor=actor)


@tracked  # every job is a run: RUNNING here, FINISHED / KILLED / FAILED as execute ends
def execute(db: Database, job_id: int, *, progress: ProgressFn | None = None,
            should_stop: Callable[[], bool] | None = None,
            pause_gate: Callable[[], float] | None = None,
            actor: str | None = None,
            before_complete: Callable[[RunOutcome], None] | None = None,
            on_stopped: Callable[[int], None] | None = None
            ) -> RunOutcome | None:
    """Run a claimed (RUNNING) job to the end: search, register, mark COMPLETED.
    `before_complete` (the promotion gate) runs on the registered version before the job
    shows COMPLETED, so whoever sees COMPLETED also sees its verdict.

    Returns None when the job was cancelled (trials found so far are kept in the ledger).
    `should_stop` is asked once more right before registering, so a stop that arrives while
    the final model is fitted registers nothing. `on_stopped(trials_done)` (the worker: it
    knows whether a signal or a user stopped the job) replaces the default CANCELLED move.
    Errors propagate (the caller marks the job FAILED or retries it)."""
    with db.session() as s:
        job = ledger.get_job(job_id, session=s)
        already = len(ledger.trials_of(job_id, session=s))  # a retry numbers its trials on
        ds = get_dataset(job.dataset_id, session=s)
    request = TrainingRequest.from_settings(job.settings, dataset=ds.id, target=job.target)
    data, table = _prepare(load_frame(ds), request)
    if data.notes:  # dropped leaks, left-out rows: visible on the job while it runs
        with db.session() as s:
            ledger.update_progress(job_id, session=s, notes=data.notes)
    done: list[TrialResult] = []

    def on_trial(trial: TrialResult, d: TrainingData) -> None:
        trial.number += already
        done.append(trial)
        scores = [t.score for t in done if t.score is not None]
        state = Progress(trials_done=len(done), metric=d.metric.name,
                         best_score=max(scores, key=d.metric.oriented) if scores else None,
                         last_estimator=trial.estimator, budget_s=request.budget)
        with db.session() as s:
            _record_trial(s, job_id, trial, d.metric.name, best=state.best_score)
            ledger.update_progress(job_id, session=s, **asdict(state))
        log.info("trial %d %s %s %s", trial.number, trial.estimator, trial.status,
                 f"{trial.score:.5g}" if trial.score is not None else trial.reason)
        if progress:
            progress(state)

    try:
        result = run_search(data, budget=request.budget, seed=request.seed,
                            estimators=list(request.estimators or []) or None,
                            sampler=request.sampler, ensemble=request.ensemble,
                            on_trial=on_trial, should_stop=should_stop, pause_gate=pause_gate,
                            fixed_params=request.params, max_trials=request.n_trials,
                            search_space=request.space_overrides(),
                            portfolio=request.portfolio)
    except SearchCancelled:
        return _stopped(db, job_id, len(done), on_stopped)
    if should_stop is not None and should_stop():  # stopped while the final model was fitted
        return _stopped(db, job_id, len(done), on_stopped)
    if result.best.estimator == "ensemble":
        with db.session() as s:
            _record_trial(s, job_id, result.best, data.metric.name)
    cv = result.best.cv
    evaluation = {**result.evaluation, "suggestions": result.suggestions, "notes": result.notes,
                  "elapsed_s": result.elapsed_s, "task_reason": data.problem.reason,
                  "dropped_columns": data.dropped, **_market_evaluation(result, table, request),
                  "reference": build_reference(data.X, data.schema, data.y, data.task,
                                               cv.oof_pred[cv.covered])}
    with db.session() as s:
        mv = register_version(
            result.pipeline, session=s, name=job.model_name, task=data.task,
            target=table.target if table is not None else job.target,
            input_schema=data.schema, classes=_jsonable(data.problem.classes),
            metric=data.metric.name, score=result.best.score, metrics=evaluation["metrics"],
            evaluation=evaluation, estimator=result.best.estimator,
            params=result.best.params, dataset_id=ds.id, dataset_fingerprint=ds.fingerprint,
            job_id=job_id, actor=actor)
    outcome = RunOutcome(job_id, job.model_name, mv, result, ds)
    if before_complete is not None:
        before_complete(outcome)
    with db.session() as s:
        ledger.transition(job_id, JobState.COMPLETED,
                          f"registered {job.model_name}:{mv.version}", session=s,
                          version_id=mv.id)
    return outcome


def _stopped(db: Database, job_id: int, trials: int,
             on_stopped: Callable[[int], None] | None) -> None:
    if on_stopped is not None:
        on_stopped(trials)
        return
    with db.session() as s:
        ledger.transition(job_id, JobState.CANCELLED,
                          f"cancelled by request after {trials} trials", session=s)


def run_training(db: Database, request: TrainingRequest, *,
                 progress: ProgressFn | None = None, actor: str | None = None) -> RunOutcome:
    """Foreground training (the CLI's `automl`/`train`): submit as RUNNING and execute here."""
    with db.session() as s:
        job = submit(request, session=s, state=JobState.RUNNING, actor=actor)
    try:
        with Heartbeat(db, job.id):  # or a worker's reaper would take it for a lost job
            outcome = execute(db, job.id, progress=progress, actor=actor)
    except BaseException as exc:
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        interrupted = isinstance(exc, KeyboardInterrupt)
        with db.session() as s:
            ledger.transition(job.id, JobState.CANCELLED if interrupted else JobState.FAILED,
                              "interrupted by the user" if interrupted else reason[:2000],
                              session=s)
        raise
    assert outcome is not None  # nothing can cancel a foreground job but Ctrl-C
    return outcome


def _prepare(frame: pd.DataFrame, request: TrainingRequest
             ) -> tuple[TrainingData, MarketTable | None]:
    """Training data from the upload, through the pre-flight checks (width for the budget,
    minimum rows, target leaks) that every request passes before a job is queued and again
    before it runs."""
    check_shape(frame, request.target, request.budget)
    data, table = _prepare_table(frame, request)
    return preflight(data), table


def _prepare_table(frame: pd.DataFrame, request: TrainingRequest
                   ) -> tuple[TrainingData, MarketTable | None]:
    """Training data from the upload; for market requests, indicator features and the forward
    target first (the target column named by the user is then the price column)."""
    target, market = request.target, request.market
    if market is None:
        return prepare(frame, target, task=request.task, metric=request.metric,
                       seed=request.seed, time_column=request.time_column,
                       exclude=request.exclude or ()), None
    if target not in frame.columns:
        raise InputError(f"The price column {target!r} is not in the data.")
    table = market_table(frame, kind=market.kind, horizon=market.horizon,
                         price_column=target, time_column=request.time_column,
                         ticker_column=market.ticker_column)
    data = prepare(table.frame, table.target, task=request.task, metric=request.metric,
                   seed=request.seed, time_column=table.time_column,
                   ticker_column=table.ticker_column, gap=market.gap or market.horizon,
                   # the time column stays: predict rebuilds the indicators in its order
                   exclude=tuple(c for c in request.exclude or ()
                                 if c in table.frame.columns and c != table.time_column))
    data.notes[:0] = table.notes
    return data, table


def _market_evaluation(result: SearchResult, table: MarketTable | None,
                       request: TrainingRequest) -> dict[str, Any]:
    """The backtest and what predict needs to rebuild the indicator features."""
    if table is None or request.market is None:
        return {}
    report = backtest(result, forward_return=table.forward_return,
                      cost_bps=request.market.cost_bps, horizon=table.horizon)
    return {"backtest": report.to_dict(),
            "market": {"kind": table.kind, "horizon": table.horizon,
                       "price_column": table.price_column, "time_column": table.time_column,
                       "ticker_column": table.ticker_column}}


def _record_trial(session: Session, job_id: int, trial: TrialResult, metric: str, *,
                  best: float | None = None) -> None:
    scored = trial.cv is not None and trial.status == TrialState.OK
    row = ledger.add_trial(job_id, session=session, number=trial.number,
                           estimator=trial.estimator, params=trial.params, metric=metric,
                           cv_mean=trial.cv.mean if scored else None,
                           cv_std=trial.cv.std if scored else None,
                           fit_time_s=trial.cv.fit_time_s if trial.cv else None,
                           predict_ms_per_1k=trial.cv.predict_ms_per_1k if trial.cv else None,
                           status=trial.status, reason=trial.reason)
    trial_finished(row, session=session, best=best, seconds=trial.seconds)  # a child run


def _jsonable(values: list[Any]) -> list[Any]:
    return [v.item() if hasattr(v, "item") else v for v in values]
