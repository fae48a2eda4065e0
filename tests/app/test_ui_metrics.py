"""Issue 15 items 6 and 7 on the pages: the version page shows balanced accuracy and PR-AUC
for an imbalanced target only and says what the stored intervals promise; Compare follows the
same rule; the Predict page shows lower/upper at a chosen stored coverage."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from streamlit.testing.v1 import AppTest

from core.registry import register_version
from tests.core.test_metrics_intervals import (
    TARGET,
    register_diabetes,
    register_without_intervals,
)
from tests.factories import ROOT, SCHEMA, store_session, training_frame

pytestmark = pytest.mark.slow  # AppTest runs of the whole app, ~10 s each

CLS_METRICS = {"roc_auc": 0.9, "accuracy": 0.95, "f1": 0.5, "balanced_accuracy": 0.7,
               "pr_auc": 0.55}


def _register_churn(name: str, evaluation: dict) -> None:
    X, y = training_frame()
    pre = ColumnTransformer([("num", StandardScaler(), ["a", "b"]),
                             ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan"])])
    pipe = make_pipeline(pre, LogisticRegression()).fit(X, y)
    with store_session() as s:
        register_version(pipe, session=s, name=name, task="binary", target="y",
                         input_schema=SCHEMA, classes=["no", "yes"], metric="roc_auc",
                         score=0.9, metrics=CLS_METRICS, evaluation={"metrics": CLS_METRICS,
                                                                     **evaluation})


@pytest.fixture
def models(home: Path) -> pd.DataFrame:
    _register_churn("rare", {"class_balance": {"minority_share": 0.08, "imbalanced": True}})
    # trained before class_balance was stored: its confusion matrix says 50/50
    _register_churn("even", {"confusion_matrix": {"labels": ["no", "yes"],
                                                  "matrix": [[40, 10], [10, 40]]}})
    holdout = register_diabetes()
    register_without_intervals()
    return holdout


def _page(page: str, **params: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    at.query_params.update(params)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _captions(at: AppTest) -> str:
    return " ".join(str(c.value) for c in at.caption)


def _shown_metrics(at: AppTest) -> set[str]:
    table = next(f.value for f in at.dataframe if {"metric", "score"} <= set(f.value.columns))
    return set(table["metric"])


def test_version_page_shows_imbalance_metrics_only_for_imbalanced_targets(models) -> None:
    rare = _page("pages/version.py", model="rare", version="1")
    assert {"balanced_accuracy", "pr_auc", "accuracy"} <= _shown_metrics(rare)
    assert "imbalanced (its rarest class holds 8% of the rows" in _captions(rare)
    even = _page("pages/version.py", model="even", version="1")
    assert _shown_metrics(even) == {"roc_auc", "accuracy", "f1"}
    assert "imbalanced" not in _captions(even)


def test_version_page_states_the_interval_promise(models) -> None:
    at = _page("pages/version.py", model="diabetes", version="1")
    assert {"mse", "mape", "rmse"} <= _shown_metrics(at)
    assert "holds the true value for about 90% of new rows" in _captions(at)
    old = _page("pages/version.py", model="old", version="1")
    assert "Prediction intervals" not in _captions(old)


def test_compare_shows_imbalance_metrics_when_a_compared_target_is_imbalanced(models) -> None:
    def metrics(versions: str) -> set[str]:
        at = _page("pages/compare.py", versions=versions)
        table = next(f.value for f in at.dataframe if "metric" in f.value.columns)
        return set(table["metric"])

    assert {"balanced_accuracy", "pr_auc"} <= metrics("rare:1,even:1")
    assert not {"balanced_accuracy", "pr_auc"} & metrics("even:1,diabetes:1")


def test_predict_page_shows_lower_and_upper_at_the_chosen_coverage(models,
                                                                  tmp_path: Path) -> None:
    holdout = models
    at = _page("pages/predict.py")
    at.selectbox(key="predict_model").set_value("diabetes").run()
    coverage = next(s for s in at.selectbox if s.label == "Prediction interval coverage")
    assert coverage.value == 0.9 and coverage.options == ["50%", "80%", "90%", "95%", "99%"]
    rows = holdout.drop(columns=[TARGET]).head(5).to_csv(index=False).encode()
    at.file_uploader(key="predict_upload").upload("rows.csv", rows, "text/csv").run()
    table = next(f.value for f in at.dataframe if "lower" in f.value.columns)
    width90 = (table["upper"] - table["lower"]).iloc[0]
    coverage.set_value(0.95).run()
    table = next(f.value for f in at.dataframe if "lower" in f.value.columns)
    assert (table["upper"] - table["lower"]).iloc[0] > width90 > 0
    next(b for b in at.button if b.label == "Predict this row").click().run()
    assert "95% prediction interval:" in _captions(at)
    at.selectbox(key="predict_model").set_value("old").run()
    assert "stores no prediction intervals" in _captions(at)
    assert not any(s.label == "Prediction interval coverage" for s in at.selectbox)
