"""Use cases over the search: run it as a recorded job and register the winner.

The CLI, the API and the job worker call these, so every path records the same ledger rows,
trials and lineage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


from core.automl.search import SearchResult, TrialResult, search
from core.automl.train import TrainingData
from core.data.datasets import StoredDataset, ingest_path, load_frame
from core.jobs import ledger
from core.registry import register_version
from core.store import Dataset, ModelVersion

ProgressFn = Callable[[dict[str, Any]], None]


@dataclass
class RunOutcome:
    job_id: int
    model: str
    version: ModelVersion
    result: SearchResult
    dataset: Dataset
    dataset_warnings: list[str]


def run_training(dataset: Dataset | StoredDataset | str | Path, target: str, *,
                 name: str | None = None, task: str | None = None, metric: str | None = None,
                 budget: float = 60.0, seed: int = 0, time_column: str | None = None,
                 estimators: list[str] | None = None, params: dict[str, Any] | None = None,
                 progress: ProgressFn | None = None, actor: str | None = None) -> RunOutcome:
    """Search (or, with one estimator and `params`, train one configuration), record the job
    and its trials, and register the best pipeline as the model's next version."""
    stored_warnings: list[str] = []
    if isinstance(dataset, (str, Path)):
        stored = ingest_path(dataset, actor=actor)
        ds, stored_warnings = stored.dataset, stored.warnings
    elif isinstance(dataset, StoredDataset):
        ds, stored_warnings = dataset.dataset, dataset.warnings
    else:
        ds = dataset
    frame = load_frame(ds)
    model_name = name or ds.name
    fixed = params is not None
    settings = {"budget": budget, "seed": seed, "time_column": time_column,
                "estimators": estimators, "params": params}
    job = ledger.create_job(model_name=model_name, target=target, task=task or "auto",
                            metric=metric or "auto", kind="fixed" if fixed else "search",
                            dataset_id=ds.id, settings=settings, state=ledger.RUNNING,
                            actor=actor)
    trials_done: list[TrialResult] = []

    def on_trial(trial: TrialResult, data: TrainingData) -> None:
        trials_done.append(trial)
        ledger.add_trial(job.id, number=trial.number, estimator=trial.estimator,
                         params=trial.params, metric=data.metric.name,
                         cv_mean=trial.cv.mean if trial.cv and trial.status == "ok" else None,
                         cv_std=trial.cv.std if trial.cv and trial.status == "ok" else None,
                         fit_time_s=trial.cv.fit_time_s if trial.cv else None,
                         predict_ms_per_1k=trial.cv.predict_ms_per_1k if trial.cv else None,
                         status=trial.status, reason=trial.reason)
        scores = [t.score for t in trials_done if t.score is not None]
        best = (max(scores, key=data.metric.oriented) if scores else None)
        state = {"trials_done": len(trials_done), "best_score": best,
                 "metric": data.metric.name, "last_estimator": trial.estimator}
        ledger.update_progress(job.id, **state)
        if progress:
            progress(state)

    try:
        result = search(frame, target, budget=budget, metric=metric, task=task, seed=seed,
                        time_column=time_column, estimators=estimators,
                        on_trial=on_trial, fixed_params=params)
        mv = register_version(
            result.pipeline, name=model_name, task=result.data.task, target=target,
            input_schema=result.data.schema, classes=_jsonable(result.data.problem.classes),
            metric=result.data.metric.name, score=result.best.score,
            metrics=result.evaluation["metrics"], evaluation=result.evaluation,
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
    return RunOutcome(job.id, model_name, mv, result, ds, stored_warnings)


def _jsonable(values: list[Any]) -> list[Any]:
    out = []
    for v in values:
        if hasattr(v, "item"):
            v = v.item()
        out.append(v)
    return out


