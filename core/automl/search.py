"""The search: evaluate candidate configurations within a time budget and pick the best.

This first version tries the catalogue's known-good default configuration of every estimator
that fits the task, cheapest first, while the budget lasts; the Optuna search of the AutoML
issue plugs in as further candidates after these defaults.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from core.automl.catalog import get_spec, specs_for
from core.automl.train import (
    CVResult,
    TrainingData,
    build_pipeline,
    cross_validate,
    evaluate,
    fit_final,
    prepare,
)
from core.errors import WorkbenchError

REFIT_SHARE = 0.15  # part of the budget kept for the final refit on all rows


@dataclass
class TrialResult:
    number: int
    estimator: str
    params: dict[str, Any]
    status: str  # ok | pruned | failed
    cv: CVResult | None = None
    reason: str = ""

    @property
    def score(self) -> float | None:
        return self.cv.mean if self.cv is not None and self.status == "ok" else None


@dataclass
class SearchResult:
    data: TrainingData
    trials: list[TrialResult]
    best: TrialResult
    pipeline: Pipeline
    evaluation: dict[str, Any]
    elapsed_s: float
    notes: list[str] = field(default_factory=list)

    def leaderboard(self) -> pd.DataFrame:
        return leaderboard_frame(self.trials, self.data.metric.name,
                                 self.data.metric.greater_is_better)


def leaderboard_frame(trials: list[TrialResult], metric: str,
                      greater_is_better: bool) -> pd.DataFrame:
    rows = [{
        "rank": None, "trial": t.number, "estimator": t.estimator,
        "params": ", ".join(f"{k}={_fmt(v)}" for k, v in t.params.items()),
        f"{metric}_mean": t.cv.mean if t.cv and t.status == "ok" else None,
        f"{metric}_std": t.cv.std if t.cv and t.status == "ok" else None,
        "fit_time_s": t.cv.fit_time_s if t.cv else None,
        "predict_ms_per_1k": t.cv.predict_ms_per_1k if t.cv else None,
        "status": t.status, "reason": t.reason,
    } for t in trials]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    key = f"{metric}_mean"
    frame = frame.sort_values(key, ascending=not greater_is_better, na_position="last",
                              kind="stable").reset_index(drop=True)
    frame["rank"] = range(1, len(frame) + 1)
    return frame


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def candidates(task: str, estimators: list[str] | None) -> list[tuple[str, dict[str, Any]]]:
    specs = [get_spec(k, task) for k in estimators] if estimators else specs_for(task)
    return [(spec.key, dict(d)) for spec in specs for d in spec.defaults]


def evaluate_candidate(number: int, key: str, params: dict[str, Any],
                       data: TrainingData) -> TrialResult:
    """One trial; an estimator that fails is recorded with its reason, never fatal."""
    try:
        pipeline = build_pipeline(get_spec(key), data.task, params, data.schema)
        cv = cross_validate(pipeline, data)
        return TrialResult(number, key, params, "ok", cv=cv)
    except WorkbenchError:
        raise
    except Exception as exc:  # an estimator crashing must not abort the search
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return TrialResult(number, key, params, "failed", reason=last[:500])


def search(frame: pd.DataFrame, target: str, *, budget: float = 60.0, metric: str | None = None,
           task: str | None = None, seed: int = 0, time_column: str | None = None,
           **kwargs: Any) -> SearchResult:
    """The Python API: search within `budget` seconds for the best pipeline predicting
    `target`; returns the leaderboard and the refitted best pipeline."""
    started = time.monotonic()
    data = prepare(frame, target, task=task, metric=metric, seed=seed, time_column=time_column)
    return run_search(data, budget=budget - (time.monotonic() - started), **kwargs)


def run_search(data: TrainingData, *, budget: float = 60.0,
               estimators: list[str] | None = None,
               on_trial: Callable[[TrialResult, TrainingData], None] | None = None,
               should_stop: Callable[[], bool] | None = None,
               fixed_params: dict[str, Any] | None = None) -> SearchResult:
    """Search prepared data within `budget` seconds. With `fixed_params` and one estimator,
    evaluate exactly that configuration (no search).

    Native thread pools (OpenMP, BLAS) are held to one thread: on a small shared machine,
    oversubscribed OpenMP spin-waits made one search 15x slower; parallelism belongs to
    trials and workers, not inside an estimator."""
    with threadpool_limits(limits=1):
        return _run_search(data, budget=budget, estimators=estimators, on_trial=on_trial,
                           should_stop=should_stop, fixed_params=fixed_params)


def _run_search(data: TrainingData, *, budget: float, estimators: list[str] | None,
                on_trial: Callable[[TrialResult, TrainingData], None] | None,
                should_stop: Callable[[], bool] | None,
                fixed_params: dict[str, Any] | None) -> SearchResult:
    started = time.monotonic()
    deadline = started + budget * (1 - REFIT_SHARE)
    trials: list[TrialResult] = []
    if fixed_params is not None:
        if not estimators or len(estimators) != 1:
            raise WorkbenchError("Training one configuration needs exactly one estimator.")
        spec = get_spec(estimators[0], data.task)
        todo = [(spec.key, {**spec.defaults[0], **fixed_params})]
    else:
        todo = candidates(data.task, estimators)
    for number, (key, params) in enumerate(todo):
        if trials and (time.monotonic() >= deadline or (should_stop and should_stop())):
            break
        trial = evaluate_candidate(number, key, params, data)
        trials.append(trial)
        if on_trial:
            on_trial(trial, data)
    ok = [t for t in trials if t.status == "ok"]
    if not ok:
        reasons = "; ".join(f"{t.estimator}: {t.reason}" for t in trials)
        raise WorkbenchError(f"Every candidate failed to train, so no model was produced. "
                             f"Reasons: {reasons}")
    best = max(ok, key=lambda t: data.metric.oriented(t.score))
    pipeline = fit_final(build_pipeline(get_spec(best.estimator), data.task, best.params,
                                        data.schema), data)
    return SearchResult(data=data, trials=trials, best=best, pipeline=pipeline,
                        evaluation=evaluate(data, best.cv), elapsed_s=time.monotonic() - started,
                        notes=list(data.notes))
