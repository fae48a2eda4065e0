"""Stacking and bagging (issue 17): a stacker is kept only when its own cross-validated score on
the out-of-fold rows is better; small shuffled tables get bagged fold models instead of a
refit; both are saved and loaded through the trusted skops path, serve, and are refused or
covered by ONNX export as their steps allow; when the rules or the clock say no, the search
answers as before."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_iris

from core.automl import stacking as stk
from core.automl.catalog import CATALOG
from core.automl.ensemble import WeightedEnsemble
from core.automl.metrics import get_metric
from core.automl.search import search
from core.automl.train import build_pipeline, cross_validate, prepare
from core.registry.artifacts import _skops_bytes, load_verified, save_pipeline
from core.registry.trust import TRUSTED_TYPES, untrusted_types


def _iris() -> pd.DataFrame:
    frame = load_iris(as_frame=True).frame.rename(columns={"target": "species"})
    frame["species"] = frame["species"].map({0: "setosa", 1: "versicolor", 2: "virginica"})
    return frame


def _binary_members(rng: np.random.Generator, n: int = 400):
    """Two members whose probabilities rank well but are badly calibrated (over- and
    under-confident): an average cannot fix that, a logistic stacker can."""
    y = rng.integers(0, 2, n)
    signal = (2 * y - 1) + rng.normal(scale=1.2, size=n)
    over = 1 / (1 + np.exp(-4 * signal))
    under = 1 / (1 + np.exp(-0.2 * (signal + rng.normal(scale=0.5, size=n))))
    return y, [np.column_stack([1 - p, p]) for p in (over, under)]


def test_the_stacker_is_kept_only_when_its_held_out_score_is_better() -> None:
    rng = np.random.default_rng(0)
    metric = get_metric("log_loss", "binary")
    y, members = _binary_members(rng)
    greedy = min(metric.score(y, None, (members[0] + members[1]) / 2, [0, 1]),
                 metric.score(y, None, members[0], [0, 1]))
    fit = stk.cross_validated_stacker(metric, y, members, "binary", [0, 1], seed=0)
    assert fit is not None and stk.keeps(metric, fit, greedy)
    assert fit.score < greedy  # log loss: lower is better
    # a member that is already calibrated (labels drawn from its own probabilities): nothing
    # to learn, the greedy answer stays
    calibrated = rng.uniform(0.02, 0.98, size=len(y))
    y = (rng.uniform(size=len(y)) < calibrated).astype(int)
    same = [np.column_stack([1 - calibrated, calibrated])] * 2
    plain = metric.score(y, None, same[0], [0, 1])
    assert not stk.keeps(metric, stk.cross_validated_stacker(metric, y, same, "binary", [0, 1],
                                                             seed=0), plain)


def test_the_stacker_is_judged_on_rows_it_did_not_learn_from() -> None:
    """On pure noise its cross-validated score is worse than the same combiner scored on the
    rows it was fitted on: the held-out score is what the choice uses."""
    rng = np.random.default_rng(1)
    metric = get_metric("log_loss", "binary")
    y = rng.integers(0, 2, 120)
    noise = [np.column_stack([1 - p, p]) for p in rng.uniform(0.05, 0.95, size=(12, 120))]
    fit = stk.cross_validated_stacker(metric, y, noise, "binary", [0, 1], seed=0)
    assert fit is not None
    in_sample = stk._combine(stk.features(noise, "binary"), fit.coef, fit.intercept, "binary")
    assert fit.score > metric.score(y, None, in_sample, [0, 1])
    assert not stk.keeps(metric, fit, metric.score(y, None, np.full((120, 2), 0.5), [0, 1]))


def test_no_stacker_when_the_deadline_leaves_no_time_or_rows_are_too_few() -> None:
    rng = np.random.default_rng(2)
    metric = get_metric("log_loss", "binary")
    y, members = _binary_members(rng)
    assert stk.cross_validated_stacker(metric, y, members, "binary", [0, 1], seed=0,
                                       deadline=time.monotonic() - 1) is None
    assert stk.cross_validated_stacker(metric, y[:20], [m[:20] for m in members], "binary",
                                       [0, 1], seed=0) is None


def _fitted_members(data) -> list:
    """A linear pipeline bagged from its fold models, and a k-NN refitted on every row."""
    linear = build_pipeline(CATALOG["linear"], data.task, dict(CATALOG["linear"].defaults[0]),
                            data.schema)
    cv = cross_validate(linear, data, keep_folds=True)
    assert cv.fold_models is not None and len(cv.fold_models) == len(data.splits)
    knn = build_pipeline(CATALOG["knn"], data.task, {"n_neighbors": 15, "weights": "uniform"},
                         data.schema).fit(data.X, data.y)
    return [stk.bag(cv.fold_models, data.task), knn]


def test_a_stacked_ensemble_round_trips_through_the_trusted_path(home: Path) -> None:
    data = prepare(_iris(), "species", seed=0)
    members = _fitted_members(data)
    classes = data.problem.classes
    outputs = [m.predict_proba(data.X) for m in members]
    fit = stk.cross_validated_stacker(get_metric("log_loss", data.task), data.y.to_numpy(),
                                      outputs, data.task, classes, seed=0)
    assert fit is not None
    model = stk.StackedEnsemble(members, fit.coef, fit.intercept, data.task)
    assert untrusted_types(_skops_bytes(model), "stacked") == []  # what the audit sees
    stored = save_pipeline(model, "stacked")
    loaded = load_verified(stored.relpath, stored.fingerprint, "stacked")
    assert type(loaded) is stk.StackedEnsemble
    np.testing.assert_allclose(loaded.predict_proba(data.X), model.predict_proba(data.X))
    assert list(loaded.predict(data.X)) == list(model.predict(data.X))
    assert set(loaded.predict(data.X)) <= set(classes)
    np.testing.assert_allclose(loaded.predict_proba(data.X).sum(axis=1), 1.0)


def test_the_new_type_is_trusted_by_exact_name_and_nothing_broader() -> None:
    assert "core.automl.stacking.StackedEnsemble" in TRUSTED_TYPES
    assert not any(t.endswith("*") or t in ("core.automl.stacking", "core.automl")
                   for t in TRUSTED_TYPES)
    assert not any(t.startswith("sklearn.linear_model") for t in TRUSTED_TYPES)


def test_onnx_refuses_a_stacked_model_naming_the_step_and_the_lean_path_steps_aside() -> None:
    pytest.importorskip("skl2onnx")  # the onnx extra
    from core.deploy.fastpath import EnsembleFast, compile_fast
    from core.onnx.convert import blocking_steps

    data = prepare(_iris(), "species", seed=0)
    members = _fitted_members(data)
    k = len(members[0].pipelines) + 1
    stacked = stk.StackedEnsemble(members, np.zeros((3, 6)), np.zeros(3), data.task)
    assert any("StackedEnsemble" in b for b in blocking_steps(stacked))
    assert compile_fast(stacked, data.schema) is None  # the careful path serves it
    flat = stk.flatten(members, [0.5, 0.5], data.task)  # a bag inside a greedy ensemble
    assert type(flat) is WeightedEnsemble and len(flat.pipelines) == k
    assert not blocking_steps(flat)
    fast = compile_fast(flat, data.schema)
    assert isinstance(fast, EnsembleFast)
    X = data.X.astype("float64")  # as served: JSON numbers (training frames are float32)
    arrays = {c: X[c].to_numpy() for c in X.columns}
    np.testing.assert_allclose(fast.predict_proba(arrays), flat.predict_proba(X), rtol=1e-9)


def test_a_small_shuffled_table_gets_its_best_pipeline_bagged_not_refitted() -> None:
    frame = _iris()
    result = search(frame, "species", budget=20, n_trials=1, estimators=["linear"], seed=0)
    model = result.pipeline
    assert type(model) is WeightedEnsemble and len(model.pipelines) == len(result.data.splits)
    rows = frame.drop(columns=["species"]).head(30)
    expected = np.mean([p.predict_proba(rows) for p in model.pipelines], axis=0)
    np.testing.assert_allclose(model.predict_proba(rows), expected)


def test_when_the_rule_says_no_the_best_pipeline_is_refitted_as_before(monkeypatch) -> None:
    monkeypatch.setattr(stk, "BAGGING", stk.BaggingRule(max_rows=10, min_folds=2, members=3))
    result = search(_iris(), "species", budget=20, n_trials=1, estimators=["linear"], seed=0)
    assert type(result.pipeline).__name__ == "Pipeline"
    one = search(_iris(), "species", budget=20, n_trials=1, estimators=["linear"], seed=0,
                 ensemble=False)  # one pipeline asked for: refitted, never bagged
    assert type(one.pipeline).__name__ == "Pipeline"


def test_time_ordered_rows_are_never_bagged() -> None:
    frame = _iris().sample(frac=1.0, random_state=0).reset_index(drop=True)
    frame["day"] = pd.date_range("2024-01-01", periods=len(frame), freq="D").astype(str)
    result = search(frame, "species", budget=20, n_trials=1, estimators=["linear"], seed=0,
                    time_column="day")
    assert type(result.pipeline).__name__ == "Pipeline"


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_stacker_outputs_have_the_task_shape(task: str) -> None:
    rng = np.random.default_rng(3)
    n = 200
    if task == "regression":
        y = rng.normal(size=n)
        members = [y + rng.normal(scale=s, size=n) for s in (0.3, 0.6)]
        metric, classes = get_metric("rmse", task), None
    else:
        y, members = _binary_members(rng, n)
        metric, classes = get_metric("log_loss", task), [0, 1]
    fit = stk.cross_validated_stacker(metric, y, members, task, classes, seed=0)
    assert fit is not None
    out = stk._combine(stk.features(members, task), fit.coef, fit.intercept, task)
    assert out.shape == ((n,) if task == "regression" else (n, 2))
    if task == "regression":
        assert (fit.coef >= 0).all()  # non-negative stacking


def test_a_kept_stacker_becomes_the_registered_model_with_its_held_out_score(
        monkeypatch) -> None:
    """The search's stacked branch end to end (the margin set so any fitted stacker is kept):
    the model is a StackedEnsemble over bagged members, its reported score is the stacker's
    held-out one and the out-of-fold evaluation is computed from it."""
    import dataclasses

    monkeypatch.setattr(stk, "STACKING", dataclasses.replace(stk.STACKING, min_gain=-1e9))
    frame = _iris()
    result = search(frame, "species", budget=30, n_trials=3, estimators=["linear", "knn"],
                    seed=0)
    assert result.best.estimator == "ensemble" and result.best.params["combiner"] == "stacker"
    model = result.pipeline
    assert type(model) is stk.StackedEnsemble
    assert all(type(p) is WeightedEnsemble for p in model.pipelines)  # bagged members
    rows = frame.drop(columns=["species"]).head(20)
    np.testing.assert_allclose(model.predict_proba(rows).sum(axis=1), 1.0)
    cv = result.best.cv
    assert np.isfinite(result.best.score) and cv.covered.all()
    assert result.evaluation["metrics"]
