"""The budget is a promise on any machine (issue 17): a trial still running at its deadline is
stopped inside its fit, a refit that cannot end in time falls back to the best fold model, the
fold count follows the table's size, hopeless configurations stop after one fold, and trial
models are released. The slow estimator is an outer edge (it sleeps:
tests/factories.SleepyClassifier), registered in the catalogue for one test only."""

from __future__ import annotations

import gc
import signal
import time
import weakref

import numpy as np
import pandas as pd
import pytest
from sklearn.dummy import DummyClassifier

from core.automl import catalog
from core.automl.budget import FOLDS_BY_ROWS, OutOfTime, folds_for, interrupt_at
from core.automl.catalog import EstimatorSpec
from core.automl.search import evaluate_trial, run_search
from core.automl.train import prepare
from core.data.splits import HOLDOUT_ROWS
from tests.factories import CANCER, SleepyClassifier

FRAME = pd.read_csv(CANCER)


def _register(monkeypatch: pytest.MonkeyPatch, key: str, factory, cost: int = 1,
              fixed: dict | None = None) -> None:
    spec = EstimatorSpec(key, key, catalog.CLASSIFICATION, "linear", cost, classifier=factory,
                         regressor=None, defaults=[{}], fixed=fixed or {})
    monkeypatch.setitem(catalog.CATALOG, key, spec)


def test_a_fit_running_at_its_deadline_is_stopped_inside_the_fold() -> None:
    spec = EstimatorSpec("sleepy", "sleepy", catalog.CLASSIFICATION, "linear", 1,
                         classifier=SleepyClassifier, regressor=None, defaults=[{}])
    data = prepare(FRAME, "diagnosis", seed=0)
    trial = evaluate_trial(data, spec, {}, seed=0, number=0, stop=lambda *_: None,
                           deadline=time.monotonic() + 0.3)
    assert trial.status == "pruned" and "out of time" in trial.reason
    assert trial.cv.scores == [] and not trial.cv.complete


@pytest.mark.slow  # a real search of a few seconds
def test_a_trial_running_at_the_search_deadline_is_stopped(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "sleepy", SleepyClassifier)
    data = prepare(FRAME, "diagnosis", seed=0)
    # a generous budget: even on a loaded machine the first (linear) trial ends within it,
    # and the sleeping one, started next, sleeps far longer
    result = run_search(data, budget=20, estimators=["linear", "sleepy"], ensemble=False)
    sleepy = [t for t in result.trials if t.estimator == "sleepy"]
    assert sleepy and all(t.status == "pruned" for t in sleepy)
    assert "out of time" in sleepy[0].reason and not sleepy[0].cv.scores
    assert result.best.estimator == "linear"


def test_a_refit_that_cannot_end_in_time_keeps_the_best_fold_model(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rows = len(FRAME)
    _register(monkeypatch, "slow_refit", SleepyClassifier,
              fixed={"over_rows": int(rows * 0.9)})  # folds train on 80 % of the rows
    data = prepare(FRAME, "diagnosis", seed=0)
    result = run_search(data, budget=1.5, estimators=["slow_refit"], max_trials=1,
                        ensemble=False)
    assert result.trials[0].status == "ok"
    assert any("last validation fold" in n for n in result.notes)
    assert result.pipeline is result.best.cv.last_model
    assert result.pipeline.predict_proba(data.X.head(3)).shape == (3, 2)


@pytest.mark.parametrize(("rows", "folds"), [(300, 5), (FOLDS_BY_ROWS[0][0] + 1, 3)])
def test_fold_count_follows_the_number_of_rows(rows: int, folds: int) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(size=rows)})
    frame["y"] = np.where(frame["a"] + rng.normal(size=rows) > 0, "yes", "no")
    assert len(prepare(frame, "y", seed=0).splits) == folds == folds_for(rows)


def test_above_the_holdout_threshold_one_split_is_used() -> None:
    assert folds_for(HOLDOUT_ROWS + 1) == 1
    assert [folds_for(n) for n in (100, 10_000, 10_001, HOLDOUT_ROWS)] == [5, 5, 3, 3]


def test_a_hopeless_configuration_stops_after_its_first_fold(
        monkeypatch: pytest.MonkeyPatch) -> None:
    _register(monkeypatch, "constant", DummyClassifier, fixed={"strategy": "most_frequent"})
    data = prepare(FRAME, "diagnosis", seed=0)
    result = run_search(data, budget=120, estimators=["linear", "constant"], max_trials=2,
                        ensemble=False)
    constant = next(t for t in result.trials if t.estimator == "constant")
    assert constant.status == "pruned" and "after fold 1" in constant.reason
    assert len(constant.cv.scores) == 1


def test_trial_models_are_released_and_predictions_kept_compact() -> None:
    data = prepare(FRAME, "diagnosis", seed=0)
    models: dict[int, weakref.ref] = {}

    def keep_a_weakref(trial, _data) -> None:
        if trial.cv is not None and trial.cv.last_model is not None:
            models[trial.number] = weakref.ref(trial.cv.last_model)

    result = run_search(data, budget=120, estimators=["linear", "knn"], max_trials=3,
                        on_trial=keep_a_weakref)
    gc.collect()
    best = result.best_single.number
    assert len(models) >= 2
    kept = _members(result.pipeline)  # fold models bagged into the model stay with it
    assert all(ref() is None for number, ref in models.items()
               if number != best and id(ref()) not in kept)
    assert models[best]() is not None  # the incumbent's: importance and the refit's fallback
    assert result.best_single.cv.oof_proba.dtype == np.float32
    for trial in result.trials:
        if trial.status != "ok":
            assert trial.cv is None or trial.cv.oof_proba is None


def _members(model) -> set[int]:
    """ids of the pipelines inside an ensemble, bags included (core.automl.stacking)."""
    inner = getattr(model, "pipelines", None)
    return {id(model)} if inner is None else set().union(*(_members(p) for p in inner))


def test_the_interrupt_leaves_an_outer_timer_running() -> None:
    before_handler = signal.getsignal(signal.SIGALRM)
    outer = signal.getitimer(signal.ITIMER_REAL)[0]  # pytest-timeout's, when it runs
    if not outer:
        signal.setitimer(signal.ITIMER_REAL, 500.0)
    try:
        with pytest.raises(OutOfTime), interrupt_at(time.monotonic() + 0.05) as armed:
            assert armed
            time.sleep(30)
        assert signal.getitimer(signal.ITIMER_REAL)[0] > 0
        assert signal.getsignal(signal.SIGALRM) is before_handler
    finally:
        if not outer:
            signal.setitimer(signal.ITIMER_REAL, 0)
