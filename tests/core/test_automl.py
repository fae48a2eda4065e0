"""The AutoML search: budget kept, failures contained, ensembles only when they help,
reproducible with a seed, time order respected, and a model that survives the registry."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin

from core.automl import catalog
from core.automl.catalog import EstimatorSpec
from core.automl.ensemble import WeightedEnsemble, select
from core.automl.metrics import get_metric
from core.automl.search import run_search, search
from core.automl.train import prepare
from core.features.schema import align_to_schema
from tests.factories import DATA

CANCER = pd.read_csv(DATA / "breast_cancer.csv")


def _business(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A churn-like table with categorical, boolean, datetime, id and missing values."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "pro", "team"], n)
    tenure = rng.integers(1, 60, n).astype(float)
    tenure[rng.random(n) < 0.1] = np.nan
    spend = rng.gamma(2, 30, n)
    logit = -1 + (plan == "basic") * 1.2 - 0.04 * np.nan_to_num(tenure, nan=30) + spend / 100
    churn = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({
        "customer_id": [f"C{i:06d}" for i in range(n)], "plan": plan, "tenure": tenure,
        "spend": spend, "autopay": rng.choice(["yes", "no"], n),
        "signup": pd.date_range("2022-01-01", periods=n, freq="D").astype(str), "churn": churn,
    })


@pytest.mark.slow  # real searches
@pytest.mark.serial  # a wall-clock bound: alone, not beside a parallel worker
@pytest.mark.parametrize("budget", [3.0, 8.0])
def test_the_budget_is_a_promise(budget: float) -> None:
    """The clock is respected (a 3 s search does not run for 30). The +10 % promise itself is
    measured at 60 s, with a CPU burner beside it, by bench/automl.py; here the slack absorbs
    a busy machine's slow spells (a 3 s search took 4.1 s, and more at load 5-8, while the
    suite and other work ran), so this stays a test of behaviour, not of speed."""
    started = time.monotonic()
    result = search(CANCER, "diagnosis", budget=budget, seed=0)
    wall = time.monotonic() - started
    assert wall <= budget * 2 + 4, f"took {wall:.1f}s for a {budget}s budget"
    assert result.trials  # a result, even when a busy machine fits only one trial in 3 s


@pytest.mark.slow  # real searches
def test_leaderboard_lists_every_trial_with_times_and_status() -> None:
    result = search(_business(), "churn", budget=6, seed=0)
    board = result.leaderboard()
    assert {"rank", "estimator", "params", "roc_auc_mean", "roc_auc_std", "fit_time_s",
            "predict_ms_per_1k", "status", "reason"} <= set(board.columns)
    ok = board[board["status"] == "ok"]
    assert list(ok["roc_auc_mean"]) == sorted(ok["roc_auc_mean"], reverse=True)
    assert set(board["status"]) <= {"ok", "pruned", "failed"}
    assert len(board) == len(result.trials) + (result.best.estimator == "ensemble")
    assert result.data.dropped == {"customer_id": pytest.approx(result.data.dropped[
        "customer_id"])} and "identifier" in result.data.dropped["customer_id"]
    assert any("customer_id" in s for s in result.suggestions)


class _Exploding(ClassifierMixin, BaseEstimator):
    def fit(self, X, y):
        raise MemoryError("simulated out-of-memory in a third-party estimator")


@pytest.mark.slow  # real searches
def test_a_failing_estimator_never_aborts_the_search(monkeypatch: pytest.MonkeyPatch) -> None:
    broken = EstimatorSpec("broken", "Always fails", catalog.CLASSIFICATION, "tree", 1,
                           classifier=_Exploding, regressor=None, defaults=[{}])
    monkeypatch.setitem(catalog.CATALOG, "broken", broken)
    result = search(CANCER, "diagnosis", budget=4, estimators=["broken", "linear"])
    failed = [t for t in result.trials if t.estimator == "broken"]
    assert failed and all(t.status == "failed" for t in failed)
    assert "simulated out-of-memory" in failed[0].reason
    assert result.best_single.estimator == "linear"
    assert any("failed" in s for s in result.suggestions)


def test_ensemble_selection_blends_only_when_it_helps() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    metric = get_metric("log_loss", "binary")

    def noisy(scale: float) -> np.ndarray:
        p1 = np.clip(0.5 + (y - 0.5) * 0.6 + rng.normal(0, scale, len(y)), 0.01, 0.99)
        return np.column_stack([1 - p1, p1])

    a, b = noisy(0.25), noisy(0.25)  # independent errors: the average is better
    blended = select(metric, y, [a, b], [0, 1])
    assert len(blended.members) == 2
    assert blended.score < min(metric.score(y, None, p, [0, 1]) for p in (a, b))
    perfect = np.column_stack([1 - y * 0.98 - 0.01, y * 0.98 + 0.01])
    alone = select(metric, y, [perfect, a], [0, 1])
    assert alone.members == [0]


@pytest.mark.slow  # real searches
def test_registered_ensemble_beats_its_best_member_and_predicts() -> None:
    result = search(CANCER, "diagnosis", budget=10, seed=0)
    m = result.data.metric
    if result.best.estimator == "ensemble":
        assert isinstance(result.pipeline, WeightedEnsemble)
        assert m.oriented(result.best.score) > m.oriented(result.best_single.score)
    no_ens = search(CANCER, "diagnosis", budget=3, seed=0, ensemble=False)
    assert no_ens.best.estimator != "ensemble"
    X = align_to_schema(CANCER.drop(columns=["diagnosis"]).head(50), result.data.schema)
    assert result.pipeline.predict_proba(X).shape == (50, 2)


@pytest.mark.slow  # real searches
def test_a_seed_makes_the_sequence_of_trials_reproducible() -> None:
    # 9 trials, not fewer: the 7th-9th are rf, extra_trees and mlp, whose scores vary run to
    # run if the seed does not reach them (the boosters before them default to a fixed seed)
    runs = [search(_business(300), "churn", budget=60, seed=7, max_trials=9)
            for _ in range(2)]
    boards = [r.leaderboard()[["estimator", "params", "roc_auc_mean", "status"]] for r in runs]
    pd.testing.assert_frame_equal(boards[0], boards[1])


@pytest.mark.slow  # real searches
@pytest.mark.parametrize("sampler", ["random", "grid"])
def test_random_and_grid_search_run(sampler: str) -> None:
    result = search(CANCER, "diagnosis", budget=3, sampler=sampler, estimators=["linear"])
    assert result.trials and result.best.score > 0.9


@pytest.mark.slow  # real searches
def test_time_column_validates_in_time_order() -> None:
    frame = _business(400).sample(frac=1, random_state=1)  # rows out of time order
    data = prepare(frame, "churn", time_column="signup")
    times = pd.to_datetime(frame["signup"]).to_numpy()
    for train, valid in data.splits:
        assert times[train].max() < times[valid].min()
    result = run_search(data, budget=3)
    assert result.best.score is not None


@pytest.mark.slow  # real searches
def test_unseen_categories_and_missing_values_at_predict_time() -> None:
    frame = _business(400)
    result = search(frame, "churn", budget=3, estimators=["linear", "hgb"], ensemble=False)
    new = frame.drop(columns=["churn"]).head(5).copy()
    new.loc[:, "plan"] = ["enterprise", None, "pro", "basic", "unknown"]
    new.loc[:, "tenure"] = np.nan
    X = align_to_schema(new, result.data.schema)
    proba = result.pipeline.predict_proba(X)
    assert proba.shape == (5, 2) and np.isfinite(proba).all()


@pytest.mark.slow  # real searches
def test_regression_evaluation_has_residuals_and_importance() -> None:
    # trial-bound, not budget-bound: a 10 s budget at load ~9 left no time for importance
    # (it failed so); three trials under a 60 s cap always leave it
    result = search(pd.read_csv(DATA / "diabetes.csv"), "progression", budget=60, n_trials=3,
                    seed=0)
    ev = result.evaluation
    assert {"rmse", "mae", "r2"} <= set(ev["metrics"])
    assert len(ev["residuals"]["residual"]) > 100
    top = [f["feature"] for f in ev["feature_importance"][:3]]
    assert {"bmi", "ltg"} & set(top)  # the two strongest predictors in this dataset


@pytest.mark.slow  # real searches
def test_classification_evaluation_has_curves_and_confusion_matrix() -> None:
    result = search(CANCER, "diagnosis", budget=4, seed=0)
    ev = result.evaluation
    assert {"accuracy", "precision", "recall", "f1", "roc_auc", "log_loss"} <= set(ev["metrics"])
    cm = np.array(ev["confusion_matrix"]["matrix"])
    assert cm.sum() == len(CANCER) and np.trace(cm) / cm.sum() > 0.9
    assert ev["roc_curve"]["fpr"][0] == 0 and ev["roc_curve"]["tpr"][-1] == 1


@pytest.mark.slow  # real searches
def test_imbalance_is_pointed_out() -> None:
    frame = CANCER.copy()
    rare = frame.index[frame["diagnosis"] == "malignant"][:30]
    frame = frame[(frame["diagnosis"] == "benign") | frame.index.isin(rare)]
    result = search(frame, "diagnosis", budget=3, metric="accuracy")
    assert any("imbalanced 1:12" in s and "F1" in s for s in result.suggestions)
