"""Issue 15 items 6 and 7 over REST and the CLI, on SQLite and PostgreSQL (the evaluation
JSON, intervals included, round-trips through the store): evaluate and compare return the new
metrics; predict returns prediction intervals for regression, the same on the lean and the
general path, and null for classifiers and versions stored without them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn import metrics as skm
from typer.testing import CliRunner

from app.api import create_app
from app.cli import app as cli
from core.deploy import deployments as dep
from tests.core.test_metrics_intervals import (
    TARGET,
    register_diabetes,
    register_without_intervals,
)
from tests.factories import record, register, store_session


@pytest.fixture
def served(backend: str) -> Iterator[tuple[TestClient, pd.DataFrame]]:
    register()  # churn:1, binary
    holdout = register_diabetes()  # diabetes:1, regression with intervals
    register_without_intervals()  # old:1, regression stored before intervals
    with store_session() as s:
        for name in ("churn", "diabetes", "old"):
            dep.deploy(name, 1, session=s)
    with TestClient(create_app(background=False)) as c:
        yield c, holdout


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.drop(columns=[TARGET]).to_dict(orient="records")


def test_predict_returns_intervals_the_same_on_both_paths(served) -> None:
    c, holdout = served
    [loaded] = c.get("/v1/models/diabetes").json()["loaded_here"]
    assert {k: loaded[k] for k in ("version", "lean_path", "runtime")} == {
        "version": 1, "lean_path": True, "runtime": "lean"}
    records = _records(holdout.head(20))
    body = c.post("/v1/models/diabetes/predict", json={"records": records}).json()
    preds, iv = np.array(body["predictions"]), np.array(body["intervals"])
    assert iv.shape == (20, 2) and body["probabilities"] is None
    q = (iv[:, 1] - preds)[0]
    assert q > 0 and np.allclose(iv[:, 1] - preds, q) and np.allclose(preds - iv[:, 0], q)
    # numbers sent as text take the general (pandas) path: the same answer
    as_text = [{k: str(v) for k, v in r.items()} for r in records]
    slow = c.post("/v1/models/diabetes/predict", json={"records": as_text}).json()
    assert np.allclose(slow["intervals"], body["intervals"])
    # the CLI (and the Predict page, through the same core.predict) agree with the API
    with store_session() as s:
        from core.predict import predict
        frame = predict("diabetes", holdout.head(20).drop(columns=[TARGET]), session=s).frame
    assert np.allclose(frame[["lower", "upper"]].to_numpy(), iv)


def test_predict_coverage_levels(served) -> None:
    c, holdout = served
    records = _records(holdout.head(3))

    def width(coverage: float | None) -> float:
        body = c.post("/v1/models/diabetes/predict",
                      json={"records": records, "coverage": coverage}).json()
        return body["intervals"][0][1] - body["intervals"][0][0]

    assert width(0.5) < width(None) == width(0.9) < width(0.95)
    r = c.post("/v1/models/diabetes/predict", json={"records": records, "coverage": 0.85})
    assert r.status_code == 422 and "0.85 is not available" in r.json()["detail"]
    assert "0.9" in r.json()["detail"]  # says which levels there are
    r = c.post("/v1/models/diabetes/predict", json={"records": records, "coverage": 1.5})
    assert r.status_code == 422


def test_intervals_are_null_for_classifiers_and_old_versions(served) -> None:
    c, holdout = served
    churn = c.post("/v1/models/churn/predict", json={"records": [record(0)]}).json()
    assert "intervals" in churn and churn["intervals"] is None
    churn = c.post("/v1/models/churn/predict",
                   json={"records": [record(0)], "coverage": 0.9}).json()
    assert churn["intervals"] is None
    old = c.post("/v1/models/old/predict", json={"records": _records(holdout.head(2))})
    assert old.status_code == 200 and old.json()["intervals"] is None
    assert len(old.json()["predictions"]) == 2


def test_evaluate_returns_the_new_classification_metrics(served) -> None:
    c, _ = served
    labelled = [{**record(i), "y": "yes" if i % 7 > 3 else "no"} for i in range(30)]
    ev = c.post("/v1/models/churn/evaluate", json={"records": labelled}).json()
    pred = c.post("/v1/models/churn/predict", json={"records": labelled}).json()
    y = np.array([r["y"] for r in labelled])
    p = np.array(pred["predictions"])
    proba_yes = np.array([d["yes"] for d in pred["probabilities"]])
    m = ev["metrics"]
    assert m["precision"] == pytest.approx(skm.precision_score(y, p, pos_label="yes"))
    assert m["recall"] == pytest.approx(skm.recall_score(y, p, pos_label="yes"))
    assert m["f1"] == pytest.approx(skm.f1_score(y, p, pos_label="yes"))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, p))
    assert m["pr_auc"] == pytest.approx(skm.average_precision_score(y == "yes", proba_yes))
    assert {"roc_auc", "log_loss", "accuracy"} <= set(m)  # the old names stay
    share = min((y == "yes").mean(), (y == "no").mean())
    assert share == pytest.approx(0.4)  # balanced enough: 12 of 30 are "yes"
    assert ev["minority_share"] == pytest.approx(share) and ev["imbalanced"] is False
    rare = [{**r, "y": "no"} for r in labelled[:27]] + [{**r, "y": "yes"}
                                                        for r in labelled[27:]]
    ev = c.post("/v1/models/churn/evaluate", json={"records": rare}).json()
    assert ev["imbalanced"] is True and ev["minority_share"] == pytest.approx(0.1)
    negatives = [{**r, "y": "no"} for r in labelled]  # the model's "yes" has 0 rows here
    ev = c.post("/v1/models/churn/evaluate", json={"records": negatives}).json()
    assert ev["imbalanced"] is True and ev["minority_share"] == 0
    assert ev["metrics"]["recall"] == 0 and "roc_auc" not in ev["metrics"]  # undefined: out


def test_evaluate_and_compare_return_mse_and_mape(served) -> None:
    c, holdout = served
    labelled = holdout.head(40).to_dict(orient="records")
    ev = c.post("/v1/models/diabetes/evaluate", json={"records": labelled}).json()
    pred = np.array(c.post("/v1/models/diabetes/predict",
                           json={"records": labelled}).json()["predictions"])
    y = holdout.head(40)[TARGET].to_numpy()
    assert ev["metrics"]["mse"] == pytest.approx(skm.mean_squared_error(y, pred))
    assert ev["metrics"]["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred))
    assert ev["imbalanced"] is None  # a regression has no classes
    cmp = c.post("/v1/models/compare", json={"versions": ["diabetes:1", "old:1"],
                                             "records": labelled}).json()["versions"]
    assert {"mse", "mape"} <= set(cmp[0]["metrics"])  # stored with new versions
    assert [v["evaluation"]["metrics"]["mse"] for v in cmp][0] == pytest.approx(
        ev["metrics"]["mse"])
    assert {"mse", "mape", "rmse", "mae", "r2"} <= set(cmp[1]["evaluation"]["metrics"])


def test_cli_predict_writes_lower_and_upper(served, tmp_path: Path) -> None:
    _, holdout = served
    rows = tmp_path / "rows.csv"
    holdout.head(10).drop(columns=[TARGET]).to_csv(rows, index=False)
    runner = CliRunner()
    for model, columns in (("diabetes", ["prediction", "lower", "upper"]),
                           ("old", ["prediction"])):
        out = tmp_path / f"{model}.csv"
        result = runner.invoke(cli, ["predict", model, str(rows), "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert list(pd.read_csv(out).columns) == columns
    wide = tmp_path / "wide.csv"
    result = runner.invoke(cli, ["predict", "diabetes", str(rows), "--out", str(wide),
                                 "--coverage", "0.95"])
    assert result.exit_code == 0, result.output
    narrow, broad = pd.read_csv(tmp_path / "diabetes.csv"), pd.read_csv(wide)
    assert ((broad["upper"] - broad["lower"]) > (narrow["upper"] - narrow["lower"])).all()
    result = runner.invoke(cli, ["predict", "diabetes", str(rows), "--out", str(wide),
                                 "--coverage", "0.85"])
    assert result.exit_code != 0 and "not available" in result.output
