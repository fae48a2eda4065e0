"""Use cases over the search: submit a training request as a job, execute it, register the
winner.

The CLI (foreground), the job worker (background), the API and schedules all go through
`submit` and `execute`, so every path records the same ledger rows, trials and lineage.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.automl.backtest import backtest
from core.automl.catalog import get_spec
from core.automl.preflight import check_shape, preflight
from core.automl.search import SearchCancelled, SearchResult, TrialResult, run_search
from core.automl.train import TrainingData, prepare
from core.data.datasets import get_dataset, load_frame, store_frame
from core.data.ingest import read_path
from core.errors import WorkbenchError
from core.features.targets import MarketTable, market_table
from core.jobs import ledger
from core.monitor.reference import build_reference
from core.registry import register_version
from core.registry.versions import check_model_name
from core.settings import get_settings
from core.store import Dataset, Job, ModelVersion, session_scope

ProgressFn = Callable[[dict[str, Any]], None]
log = logging.getLogger("workbench.job")


@dataclass
class RunOutcome:
    job_id: int
    model: str
    version: ModelVersion
    result: SearchResult
    dataset: Dataset


def submit(dataset: Dataset | int | str | Path, target: str, **request: Any) -> Job:
    """Validate a training request completely, then store its dataset and queue the job
    (the request's options are those of `job_fields`)."""
    return ledger.create_job(**job_fields(dataset, target, **request))


def job_fields(dataset: Dataset | int | str | Path, target: str, *, name: str | None = None,
               task: str | None = None, metric: str | None = None, budget: float = 60.0,
               seed: int = 0, time_column: str | None = None,
               estimators: list[str] | None = None, params: dict[str, Any] | None = None,
               sampler: str = "tpe", ensemble: bool = True,
               market: dict[str, Any] | None = None, trigger: str = "manual",
               schedule_id: int | None = None, state: str = ledger.PENDING,
               actor: str | None = None) -> dict[str, Any]:
    """Validate a training request completely and store its dataset; returns the fields of
    the job to queue (`ledger.create_job`).

    `dataset` is a stored Dataset, its id, or a path to a CSV/Parquet file. Nothing is
    written when the data, target, task, metric, estimator or parameters are wrong.

    `market` ({"kind": direction|return|log_return, "horizon", "ticker_column", "gap",
    "cost_bps"}) turns a price table into indicator features plus a forward target built from
    the price column `target`, validated walk-forward, with a backtest."""
    if isinstance(dataset, (str, Path)) and not str(dataset).isdigit():
        path = Path(dataset)
        read = read_path(path, max_bytes=get_settings().max_upload_bytes)
        frame, default_name = read.frame, path.stem
    else:
        if isinstance(dataset, Dataset):
            ds = dataset
        else:
            with session_scope() as s:
                ds = get_dataset(int(dataset), session=s)
        frame, default_name = load_frame(ds), ds.name
    model_name = check_model_name(name or default_name)
    if budget <= 0:
        raise WorkbenchError(f"The budget must be a positive number of seconds, got {budget}.")
    data, _ = _prepare(frame, target, budget=budget, task=task, metric=metric, seed=seed,
                       time_column=time_column, market=market)
    if estimators:
        for key in estimators:
            get_spec(key, data.task)
    if params is not None:
        if not estimators or len(estimators) != 1:
            raise WorkbenchError("Training one configuration needs exactly one estimator.")
        get_spec(estimators[0], data.task).make(data.task, params)  # refuses unknown names
    if isinstance(dataset, (str, Path)) and not str(dataset).isdigit():
        with session_scope() as s:
            ds = store_frame(frame, session=s, name=path.stem, fingerprint=read.fingerprint,
                             source_filename=path.name, actor=actor, notes=read.notes).dataset
    settings = {"budget": budget, "seed": seed, "time_column": time_column, "task": task,
                "metric": metric, "estimators": estimators, "params": params,
                "sampler": sampler, "ensemble": ensemble, "market": market}
    return dict(model_name=model_name, target=target, task=data.task,
                metric=data.metric.name, kind="fixed" if params else "search",
                dataset_id=ds.id, settings=settings, state=state, trigger=trigger,
                schedule_id=schedule_id, actor=actor)


def execute(job_id: int, *, progress: ProgressFn | None = None,
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
    Errors propagate after the job is marked FAILED (the worker decides about retries)."""
    job = ledger.get_job(job_id)
    with session_scope() as s:
        ds = get_dataset(job.dataset_id, session=s)
    s = job.settings
    data, table = _prepare(load_frame(ds), job.target, budget=s.get("budget", 60.0),
                           task=s.get("task"),
                           metric=s.get("metric"), seed=s.get("seed", 0),
                           time_column=s.get("time_column"), market=s.get("market"))
    if data.notes:  # dropped leaks, left-out rows: visible on the job while it runs
        ledger.update_progress(job_id, notes=data.notes)
    done: list[TrialResult] = []
    already = len(ledger.trials_of(job_id))  # a retried job numbers its trials on

    def on_trial(trial: TrialResult, d: TrainingData) -> None:
        trial.number += already
        done.append(trial)
        _record_trial(job_id, trial, d.metric.name)
        scores = [t.score for t in done if t.score is not None]
        state = {"trials_done": len(done), "metric": d.metric.name,
                 "best_score": max(scores, key=d.metric.oriented) if scores else None,
                 "last_estimator": trial.estimator, "budget_s": s.get("budget", 60.0)}
        ledger.update_progress(job_id, **state)
        log.info("trial %d %s %s %s", trial.number, trial.estimator, trial.status,
                 f"{trial.score:.5g}" if trial.score is not None else trial.reason)
        if progress:
            progress(state)

    try:
        result = run_search(data, budget=s.get("budget", 60.0), seed=s.get("seed", 0),
                            estimators=s.get("estimators"), sampler=s.get("sampler", "tpe"),
                            ensemble=s.get("ensemble", True), on_trial=on_trial,
                            should_stop=should_stop, pause_gate=pause_gate,
                            fixed_params=s.get("params"))
    except SearchCancelled:
        return _stopped(job_id, len(done), on_stopped)
    if should_stop is not None and should_stop():  # stopped while the final model was fitted
        return _stopped(job_id, len(done), on_stopped)
    if result.best.estimator == "ensemble":
        _record_trial(job_id, result.best, data.metric.name)
    cv = result.best.cv
    evaluation = {**result.evaluation, "suggestions": result.suggestions, "notes": result.notes,
                  "elapsed_s": result.elapsed_s, "task_reason": data.problem.reason,
                  "dropped_columns": data.dropped, **_market_evaluation(result, table, s),
                  "reference": build_reference(data.X, data.schema, data.y, data.task,
                                               cv.oof_pred[cv.covered])}
    with session_scope() as session:
        mv = register_version(
            result.pipeline, session=session, name=job.model_name, task=data.task,
            target=table.target if table is not None else job.target,
            input_schema=data.schema, classes=_jsonable(data.problem.classes),
            metric=data.metric.name, score=result.best.score, metrics=evaluation["metrics"],
            evaluation=evaluation, estimator=result.best.estimator,
            params=result.best.params, dataset_id=ds.id, dataset_fingerprint=ds.fingerprint,
            job_id=job_id, actor=actor)
    outcome = RunOutcome(job_id, job.model_name, mv, result, ds)
    if before_complete is not None:
        before_complete(outcome)
    ledger.transition(job_id, ledger.COMPLETED, f"registered {job.model_name}:{mv.version}",
                      version_id=mv.id)
    return outcome


def _stopped(job_id: int, trials: int, on_stopped: Callable[[int], None] | None) -> None:
    if on_stopped is not None:
        on_stopped(trials)
    else:
        ledger.transition(job_id, ledger.CANCELLED, f"cancelled by request after {trials} trials")


def run_training(dataset: Dataset | int | str | Path, target: str, *,
                 progress: ProgressFn | None = None, actor: str | None = None,
                 **request: Any) -> RunOutcome:
    """Foreground training (the CLI's `automl`/`train`): submit as RUNNING and execute here."""
    from core.jobs.control import Heartbeat

    job = submit(dataset, target, state=ledger.RUNNING, actor=actor, **request)
    try:
        with Heartbeat(job.id):  # or a worker's reaper would take it for a lost job
            outcome = execute(job.id, progress=progress, actor=actor)
    except BaseException as exc:
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        interrupted = isinstance(exc, KeyboardInterrupt)
        ledger.transition(job.id, ledger.CANCELLED if interrupted else ledger.FAILED,
                          "interrupted by the user" if interrupted else reason[:2000])
        raise
    assert outcome is not None  # nothing can cancel a foreground job but Ctrl-C
    return outcome


def _prepare(frame: Any, target: str, *, budget: float, **request: Any
             ) -> tuple[TrainingData, MarketTable | None]:
    """Training data from the upload, through the pre-flight checks (width for the budget,
    minimum rows, target leaks) that every request passes before a job is queued and again
    before it runs."""
    check_shape(frame, target, budget)
    data, table = _prepare_table(frame, target, **request)
    return preflight(data), table


def _prepare_table(frame: Any, target: str, *, task: str | None, metric: str | None,
                   seed: int, time_column: str | None, market: dict[str, Any] | None
                   ) -> tuple[TrainingData, MarketTable | None]:
    """Training data from the upload; for market requests, indicator features and the forward
    target first (the target column named by the user is then the price column)."""
    if not market:
        return prepare(frame, target, task=task, metric=metric, seed=seed,
                       time_column=time_column), None
    horizon = int(market.get("horizon") or 1)
    if horizon < 1:
        raise WorkbenchError(f"The horizon must be at least 1 period, got {horizon}.")
    if target not in frame.columns:
        raise WorkbenchError(f"The price column {target!r} is not in the data.")
    table = market_table(frame, kind=market.get("kind", "direction"), horizon=horizon,
                         price_column=target, time_column=time_column,
                         ticker_column=market.get("ticker_column"))
    data = prepare(table.frame, table.target, task=task, metric=metric, seed=seed,
                   time_column=table.time_column, ticker_column=table.ticker_column,
                   gap=int(market.get("gap") or horizon))
    data.notes[:0] = table.notes
    return data, table


def _market_evaluation(result: SearchResult, table: MarketTable | None,
                       settings: dict[str, Any]) -> dict[str, Any]:
    """The backtest and what predict needs to rebuild the indicator features."""
    if table is None:
        return {}
    market = settings.get("market") or {}
    report = backtest(result, forward_return=table.forward_return,
                      cost_bps=float(market.get("cost_bps", 5.0)), horizon=table.horizon)
    return {"backtest": report.to_dict(),
            "market": {"kind": table.kind, "horizon": table.horizon,
                       "price_column": table.price_column, "time_column": table.time_column,
                       "ticker_column": table.ticker_column}}


def _record_trial(job_id: int, trial: TrialResult, metric: str) -> None:
    scored = trial.cv is not None and trial.status == "ok"
    ledger.add_trial(job_id, number=trial.number, estimator=trial.estimator,
                     params=trial.params, metric=metric,
                     cv_mean=trial.cv.mean if scored else None,
                     cv_std=trial.cv.std if scored else None,
                     fit_time_s=trial.cv.fit_time_s if trial.cv else None,
                     predict_ms_per_1k=trial.cv.predict_ms_per_1k if trial.cv else None,
                     status=trial.status, reason=trial.reason)


def _jsonable(values: list[Any]) -> list[Any]:
    return [v.item() if hasattr(v, "item") else v for v in values]
