"""The CLI contract end to end: automl registers versions, predict writes the contract's
columns, references resolve as documented, and --json output parses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from app.cli import app
from tests.factories import DATA, ROOT

runner = CliRunner()
CANCER = str(DATA / "breast_cancer.csv")


def run(*args: str) -> object:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def run_json(*args: str) -> object:
    return json.loads(run(*args, "--json").stdout)


@pytest.mark.slow  # two real searches
def test_automl_registers_versions_and_predict_resolves_refs(home: Path, tmp_path: Path) -> None:
    first = run_json("automl", CANCER, "--target", "diagnosis", "--budget", "3")
    assert (first["model"], first["version"], first["metric"]) == ("breast_cancer", 1, "roc_auc")
    assert 0.9 < first["score"] <= 1.0
    board = first["leaderboard"]
    assert board[0]["rank"] == 1 and board[0]["status"] == "ok"
    assert {"estimator", "roc_auc_mean", "roc_auc_std", "fit_time_s",
            "predict_ms_per_1k"} <= set(board[0])
    second = run_json("automl", CANCER, "--target", "diagnosis", "--budget", "3", "--seed", "1")
    assert second["version"] == 2
    assert second["dataset_fingerprint"] == first["dataset_fingerprint"]  # stored once
    assert len(run_json("datasets")) == 1

    out = tmp_path / "p.csv"
    rows = pd.read_csv(CANCER).drop(columns=["diagnosis"]).head(25)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    run("predict", "breast_cancer", str(tmp_path / "rows.csv"), "--out", str(out))
    preds = pd.read_csv(out)
    assert list(preds.columns) == ["prediction", "proba_benign", "proba_malignant"]
    assert len(preds) == 25
    assert ((preds["proba_benign"] + preds["proba_malignant"]).round(6) == 1).all()
    truth = pd.read_csv(CANCER)["diagnosis"].head(25)
    assert (preds["prediction"] == truth).mean() > 0.8

    def answered_by(ref: str) -> int:
        return run_json("predict", ref, str(tmp_path / "rows.csv"), "--out", str(out))["version"]

    assert answered_by("breast_cancer") == 2  # no production alias yet: the latest
    moved = run_json("alias", "breast_cancer", "1", "production")
    assert moved == {"model": "breast_cancer", "alias": "production", "version": 1,
                     "previous_version": None}
    assert answered_by("breast_cancer") == 1
    assert answered_by("breast_cancer@production") == 1
    assert answered_by("breast_cancer:2") == 2

    versions = run_json("versions", "breast_cancer")
    assert [(v["version"], v["aliases"]) for v in versions] == [(1, ["production"]), (2, [])]
    assert all(len(v["fingerprint"]) == 64 and "roc_auc" in v["metrics"] for v in versions)
    models = run_json("models")
    assert models[0]["aliases"] == {"production": 1}
    jobs = run_json("jobs")
    assert [j["state"] for j in jobs] == ["COMPLETED", "COMPLETED"]
    assert jobs[0]["progress"]["trials_done"] >= 1
    history = run_json("history", "breast_cancer")
    assert history[0]["to_version"] == 1


def test_regression_predict_has_a_prediction_and_its_interval(home: Path, tmp_path: Path) -> None:
    data = str(DATA / "diabetes.csv")
    doc = run_json("automl", data, "--target", "progression", "--budget", "2")
    assert doc["metric"] == "rmse" and doc["task"] == "regression"
    out = tmp_path / "p.csv"
    run("predict", "diabetes", data, "--out", str(out))
    preds = pd.read_csv(out)
    assert list(preds.columns) == ["prediction", "lower", "upper"] and len(preds) == 442
    assert (preds["lower"] < preds["prediction"]).all()  # issue 15: a 90 % interval


def test_train_fits_the_given_configuration(home: Path) -> None:
    doc = run_json("train", str(DATA / "wine.csv"), "--target", "cultivar",
                   "--estimator", "rf", "--param", "n_estimators=30",
                   "--param", "min_samples_leaf=2")
    assert doc["metric"] == "log_loss" and doc["task"] == "multiclass"
    (trial,) = doc["leaderboard"]
    assert trial["estimator"] == "rf" and "n_estimators=30" in trial["params"]
    version = run_json("versions", "wine")[0]
    assert version["params"]["n_estimators"] == 30 and version["estimator"] == "rf"


def test_train_rejects_unknown_estimators_and_parameters(home: Path) -> None:
    data = str(DATA / "wine.csv")
    result = runner.invoke(app, ["train", data, "--target", "cultivar", "--estimator", "svm9"])
    assert result.exit_code == 2 and "Unknown estimator 'svm9'" in result.stderr
    result = runner.invoke(app, ["train", data, "--target", "cultivar", "--estimator", "rf",
                                 "--param", "depthh=3"])
    assert result.exit_code == 2 and "Unknown parameter(s) for 'rf': depthh" in result.stderr


def test_predict_reports_missing_columns(home: Path, tmp_path: Path) -> None:
    run("automl", CANCER, "--target", "diagnosis", "--budget", "2")
    rows = pd.read_csv(CANCER).drop(columns=["diagnosis", "mean_radius", "worst_area"]).head(3)
    rows.to_csv(tmp_path / "rows.csv", index=False)
    result = runner.invoke(app, ["predict", "breast_cancer", str(tmp_path / "rows.csv"),
                                 "--out", str(tmp_path / "p.csv")])
    assert result.exit_code == 2
    assert "missing from the input: 'mean_radius', 'worst_area'" in result.stderr
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.slow
def test_console_script_runs_as_a_real_process(home: Path, tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("workbench")
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    proc = subprocess.run([str(exe), "automl", CANCER, "--target", "diagnosis", "--budget", "2",
                           "--name", "cancer", "--json"], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["model"] == "cancer"
    bad = subprocess.run([str(exe), "predict", "cancer@nope", CANCER, "--out", "x.csv"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert bad.returncode == 2
    assert "has no alias 'nope'" in bad.stderr and "Traceback" not in bad.stderr


def test_drift_names_the_shifted_column(home: Path, tmp_path: Path) -> None:
    run("automl", CANCER, "--target", "diagnosis", "--budget", "2", "--estimators", "linear")
    batch = pd.read_csv(CANCER).drop(columns=["diagnosis"])
    batch["mean_radius"] = batch["mean_radius"] * 1.5
    batch.to_csv(tmp_path / "batch.csv", index=False)
    report = run_json("drift", "breast_cancer", str(tmp_path / "batch.csv"))
    assert report["drifted"] == ["mean_radius"]
    first = report["results"][0]
    assert first["feature"] == "mean_radius" and first["test"] == "ks" and first["drifted"]
    same = run_json("drift", "breast_cancer", CANCER)
    assert same["drifted"] == []


ALERT_KEYS = ["id", "model", "version", "kind", "feature", "severity", "state", "message",
              "value", "threshold", "consecutive", "action", "first_seen_at", "opened_at",
              "acknowledged_at", "resolved_at"]
STATE_KEYS = ["name", "stable", "candidate", "percent", "mode", "steps", "guard_rails",
              "auto_advance", "step_started_at", "revision", "updated_at", "runtimes"]


def test_deploy_alerts_and_ack_print_their_documents(home: Path) -> None:
    """`deploy|promote|rollback --json` print the deployment rule, `alerts --json` the open
    alerts and `ack --json` the acknowledged one, in the shapes the REST API answers."""
    from core.deploy import guard_alert
    from tests.factories import register, store_session

    register("churn", seed=0)
    register("churn", seed=1)
    run("deploy", "churn", "1")
    doc = run_json("deploy", "churn", "2", "--percent", "25", "--min-requests", "20")
    assert list(doc) == STATE_KEYS
    assert (doc["stable"], doc["candidate"], doc["percent"], doc["mode"]) == (1, 2, 25.0,
                                                                             "canary")
    assert doc["guard_rails"] == {"max_error_rate": 0.05, "max_p99_ms": 1000.0,
                                  "min_requests": 20}
    assert doc["steps"] == [10.0, 50.0, 100.0] and isinstance(doc["step_started_at"], str)
    with store_session() as s:
        alert = guard_alert.report("churn", 2, "rails broken", session=s)
    (row,) = run_json("alerts", "--model", "churn")
    assert list(row) == ALERT_KEYS
    assert (row["id"], row["kind"], row["state"], row["severity"], row["feature"],
            row["action"], row["acknowledged_at"]) == (alert.id, "GUARD", "open", "critical",
                                                       None, None, None)
    acked = run_json("ack", str(alert.id))
    assert list(acked) == ALERT_KEYS and acked["state"] == "acknowledged"
    assert acked["acknowledged_at"] >= acked["opened_at"]
    assert run_json("rollback", "churn")["candidate"] is None


@pytest.mark.slow  # a real market search
def test_market_search_reports_a_backtest_and_predicts_from_price_history(
        home: Path, tmp_path: Path) -> None:
    stocks = pd.read_csv(DATA / "stocks.csv")
    two = stocks[stocks["ticker"].isin(["AAPL", "IBM"]) & (stocks["date"] >= "2010-01-01")]
    two.to_csv(tmp_path / "prices.csv", index=False)
    doc = run_json("automl", str(tmp_path / "prices.csv"), "--target", "adj_close",
                   "--target-kind", "direction", "--horizon", "1", "--time-column", "date",
                   "--budget", "6", "--name", "prices")
    assert doc["task"] == "binary" and doc["metric"] == "roc_auc"
    bt = doc["backtest"]
    assert 0.3 < bt["metrics"]["hit_rate"] < 0.7 and bt["metrics"]["trades"] > 0
    assert bt["folds"] and all(f["train_end"] < f["valid_start"] for f in bt["folds"])
    assert {"strategy", "buy_and_hold"} <= set(bt["equity"][0])
    history = two[two["date"] >= "2013-01-01"]  # raw prices: features are rebuilt from them
    history.to_csv(tmp_path / "history.csv", index=False)
    out = tmp_path / "p.csv"
    run("predict", "prices", str(tmp_path / "history.csv"), "--out", str(out))
    preds = pd.read_csv(out)
    assert len(preds) == len(history) and preds.columns[0] == "prediction"
    assert preds["prediction"].nunique() <= 2
    # drift of raw price rows covers the rebuilt indicators: none reads as "missing" once
    # the history is long enough to define them
    report = run_json("drift", "prices", str(tmp_path / "prices.csv"))
    assert {r["feature"] for r in report["results"]} >= {"ret_1", "rsi_14"}
    assert not [r["feature"] for r in report["results"] if r["test"] == "missing"]


def test_import_registers_skops_and_refuses_pickled_mlflow_models(home: Path,
                                                                  tmp_path: Path) -> None:
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    frame = pd.read_csv(CANCER)
    X, y = frame.drop(columns=["diagnosis"]).iloc[:, :5], frame["diagnosis"]
    pipe = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    sio.dump(pipe, tmp_path / "model.skops")
    doc = run_json("import", "outside", str(tmp_path / "model.skops"))
    assert (doc["version"], doc["task"]) == (1, "binary")
    X.head(10).to_csv(tmp_path / "rows.csv", index=False)
    run("predict", "outside", str(tmp_path / "rows.csv"), "--out", str(tmp_path / "p.csv"))
    assert list(pd.read_csv(tmp_path / "p.csv").columns) == [
        "prediction", "proba_benign", "proba_malignant"]

    mlflow_dir = tmp_path / "mlflow_model"
    mlflow_dir.mkdir()
    (mlflow_dir / "MLmodel").write_text(
        "flavors:\n  sklearn:\n    pickled_model: model.pkl\n"
        "    serialization_format: cloudpickle\n")
    (mlflow_dir / "model.pkl").write_bytes(b"not even looked at")
    result = runner.invoke(app, ["import", "outside", str(mlflow_dir)])
    assert result.exit_code == 2 and "loading a pickle" in result.stderr.replace("\n", " ")
    assert [v["version"] for v in run_json("versions", "outside")] == [1]


# The --json shapes of the registry and dataset listings (ARCHITECTURE.md Part 1): the same
# keys as before they were typed (*Public models), timestamps as `isoformat()` writes them.
MODEL_KEYS = ["name", "versions", "latest_version", "task", "metric", "latest_score",
              "aliases", "created_at"]
VERSION_KEYS = ["version", "aliases", "task", "target", "estimator", "metric", "score",
                "metrics", "fingerprint", "size_bytes", "dataset_id", "dataset_fingerprint",
                "job_id", "parent_version", "archived", "params", "library_versions",
                "library_mismatch", "created_at", "created_by", "stage", "semver",
                "artifact_format", "onnx_parity"]
HISTORY_KEYS = ["alias", "from_version", "to_version", "actor", "reason", "at"]
DATASET_KEYS = ["id", "name", "fingerprint", "rows", "columns", "size_bytes", "created_at"]


def test_listing_json_keeps_its_shape(session, tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression
    from sqlmodel import select

    from core.data.datasets import ingest_path
    from core.registry import register_version
    from core.store import Dataset, ModelVersion, RegisteredModel
    from core.usecases.aliases import set_alias

    frame = pd.read_csv(CANCER)[["mean_radius", "mean_texture", "diagnosis"]].head(60)
    frame.to_csv(tmp_path / "small.csv", index=False)
    ds = ingest_path(tmp_path / "small.csv", session=session).dataset
    X, y = frame.drop(columns=["diagnosis"]), frame["diagnosis"]
    register_version(LogisticRegression().fit(X, y), session=session, name="small",
                     task="binary", target="diagnosis", classes=sorted(y.unique()),
                     input_schema=[{"name": c, "kind": "numeric", "dtype": "float64"}
                                   for c in X.columns], metric="roc_auc", score=0.75,
                     metrics={"roc_auc": 0.75}, dataset_id=ds.id)
    set_alias("small", 1, "production", session=session, reason="shape")

    (model,) = run_json("models")
    assert list(model) == MODEL_KEYS
    assert (model["versions"], model["task"], model["aliases"]) == (1, "binary",
                                                                    {"production": 1})
    (version,) = run_json("versions", "small")
    assert list(version) == VERSION_KEYS
    assert (version["aliases"], version["metrics"], version["library_mismatch"]) == (
        ["production"], {"roc_auc": 0.75}, None)
    (move,) = run_json("history", "small")
    assert list(move) == HISTORY_KEYS and move["reason"] == "shape"
    (dataset,) = run_json("datasets")
    assert list(dataset) == DATASET_KEYS and dataset["rows"] == 60

    session.expire_all()  # the stored timestamps, read back as any process reads them
    row = session.exec(select(ModelVersion)).one()
    assert version["created_at"] == row.created_at.isoformat()
    assert model["created_at"] == session.exec(select(RegisteredModel)).one() \
        .created_at.isoformat()
    assert dataset["created_at"] == session.get(Dataset, ds.id).created_at.isoformat()
