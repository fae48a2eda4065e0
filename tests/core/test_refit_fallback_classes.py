"""The refit's fallback to the last fold's model (core/automl/search.py, review s8 L3) is used
only when that model knows every class the version will declare; otherwise the full refit runs
to its end, with a note saying it overran. Time-ordered wine: the last cultivar only appears
in the most recent rows, so no fold trains on it; the estimator is an outer edge (it sleeps:
tests/factories.SleepyClassifier) whose full refit is slower than the budget."""

from __future__ import annotations

import pandas as pd
import pytest

from core.automl import catalog
from core.automl.catalog import EstimatorSpec
from core.automl.search import run_search
from core.automl.train import prepare
from tests.factories import WINE, SleepyClassifier


def test_a_fold_model_lacking_a_class_is_not_kept_in_place_of_the_refit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    frame = pd.read_csv(WINE).sample(frac=1.0, random_state=0)
    latest = frame["cultivar"] == "class_2"  # the two others mixed, then this one
    frame = pd.concat([frame[~latest], frame[latest]], ignore_index=True)
    frame["day"] = pd.date_range("2024-01-01", periods=len(frame), freq="D")
    data = prepare(frame, "cultivar", seed=0, time_column="day")
    last_train = data.splits[-1][0]
    assert set(data.y.iloc[last_train]) < set(data.problem.classes)  # the premise
    spec = EstimatorSpec("slow_refit", "slow_refit", catalog.CLASSIFICATION, "linear", 1,
                         classifier=SleepyClassifier, regressor=None, defaults=[{}],
                         fixed={"seconds": 2.0, "over_rows": len(last_train)})
    monkeypatch.setitem(catalog.CATALOG, "slow_refit", spec)
    result = run_search(data, budget=1.0, estimators=["slow_refit"], max_trials=1,
                        ensemble=False)
    assert result.pipeline is not result.best.cv.last_model
    assert list(result.pipeline.classes_) == list(data.problem.classes)
    assert result.pipeline.predict_proba(data.X.head(3)).shape == (3, 3)
    assert any("past the budget" in n for n in result.notes), result.notes
