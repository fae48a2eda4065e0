"""Use cases over the search: run it as a recorded job and register the winner.

The CLI, the API and the job worker call these, so every path records the same ledger rows,
trials and lineage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.automl.catalog import get_spec
from core.automl.search import SearchResult, TrialResult, run_search
from core.automl.train import TrainingData, prepare
from core.data.datasets import StoredDataset, load_frame, store_frame
from core.data.ingest import read_path
from core.errors import WorkbenchError
from core.jobs import ledger
from core.registry import register_version
from core.registry.versions import check_model_name
from core.settings import get_settings
from core.store import Dataset, ModelVersion

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass
class RunOutcome:
    job_id: int
    model: str
    version: ModelVersion
    result: SearchResult
    dataset: Dataset


def run_training(dataset: Dataset | StoredDataset | str | Path, target: str, *,
                 name: str | None = None, task: str | None = None, metric: str | None = None,
                 budget: float = 60.0, seed: int = 0, time_column: str | None = None,
                 estimators: list[str] | None = None, params: dict[str, Any] | None = None,
                 sampler: str = "tpe", ensemble: bool = True,
                 progress: ProgressFn | None = None, actor: str | None = None) -> RunOutcome:
    """Search (or, with one estimator and `params`, train one configuration), record the job
    and its trials, and register the best pipeline as the model's next version.

    The data and the request are fully validated before anything is written, so a bad
    upload or a bad target leaves the store exactly as it was."""
    if isinstance(dataset, (str, Path)):
        path = Path(dataset)
        read = read_path(path, max_bytes=get_settings().max_upload_bytes)
        frame = read.frame
    else:
        if isinstance(dataset, StoredDataset):
            dataset = dataset.dataset
        frame = load_frame(dataset)
    model_name = check_model_name(name or (path.stem if isinstance(dataset, (str, Path))
                                           else dataset.name))
    data = prepare(frame, target, task=task, metric=metric, seed=seed, time_column=time_column)
    if params is not None:
        if not estimators or len(estimators) != 1:
            raise WorkbenchError("Training one configuration needs exactly one estimator.")
        get_spec(estimators[0], data.task).make(data.task, params)  # refuses unknown params
    if isinstance(dataset, (str, Path)):
        ds = store_frame(frame, name=path.stem, fingerprint=read.fingerprint,
                         source_filename=path.name, actor=actor).dataset
    else:
        ds = dataset
    fixed = params is not None
    settings = {"budget": budget, "seed": seed, "time_column": time_column,
                "estimators": estimators, "params": params, "sampler": sampler,
                "ensemble": ensemble}
    job = ledger.create_job(model_name=model_name, target=target, task=task or "auto",
                            metric=metric or "auto", kind="fixed" if fixed else "search",
                            dataset_id=ds.id, settings=settings, state=ledger.RUNNING,
                            actor=actor)
    trials_done: list[TrialResult] = []

    def on_trial(trial: TrialResult, data: TrainingData) -> None:
        trials_done.append(trial)
        _record_trial(job.id, trial, data.metric.name)
        scores = [t.score for t in trials_done if t.score is not None]
        best = (max(scores, key=data.metric.oriented) if scores else None)
        state = {"trials_done": len(trials_done), "best_score": best,
                 "metric": data.metric.name, "last_estimator": trial.estimator}
        ledger.update_progress(job.id, **state)
        if progress:
            progress(state)

    try:
        result = run_search(data, budget=budget, seed=seed, estimators=estimators,
                            sampler=sampler, ensemble=ensemble, on_trial=on_trial,
                            fixed_params=params)
        if result.best.estimator == "ensemble":
            _record_trial(job.id, result.best, data.metric.name)
        evaluation = {**result.evaluation, "suggestions": result.suggestions,
                      "notes": result.notes, "elapsed_s": result.elapsed_s,
                      "task_reason": data.problem.reason,
                      "dropped_columns": data.dropped}
        mv = register_version(
            result.pipeline, name=model_name, task=result.data.task, target=target,
            input_schema=result.data.schema, classes=_jsonable(result.data.problem.classes),
            metric=result.data.metric.name, score=result.best.score,
            metrics=result.evaluation["metrics"], evaluation=evaluation,
            estimator=result.best.estimator, params=result.best.params, dataset_id=ds.id,
            dataset_fingerprint=ds.fingerprint, job_id=job.id, actor=actor)
    except BaseException as exc:
        reason = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
        if isinstance(exc, KeyboardInterrupt):
            ledger.transition(job.id, ledger.CANCELLED, "interrupted by the user")
        else:
            ledger.transition(job.id, ledger.FAILED, reason[:2000])
        raise
    ledger.transition(job.id, ledger.COMPLETED, f"registered {model_name}:{mv.version}",
                      version_id=mv.id)
    return RunOutcome(job.id, model_name, mv, result, ds)


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
    out = []
    for v in values:
        if hasattr(v, "item"):
            v = v.item()
        out.append(v)
    return out


