"""Pre-flight checks before a search starts: too few rows and too wide a table are refused
before anything is written; a feature that reproduces the target is dropped with a note that
reaches the job, the leaderboard and the registered version."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session

from core.automl.preflight import MIN_ROWS, max_columns
from core.automl.request import TrainingRequest
from core.errors import InvalidDataError
from core.jobs import ledger
from core.store import Database
from core.usecases.training import RunOutcome, run_training, submit
from tests.factories import store_snapshot, write


def _train(db: Database, path: Path, target: str, **options: object) -> RunOutcome:
    request = TrainingRequest.create(dataset=path, target=target, **options)
    return run_training(db, request)


def _churn(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    spend = rng.gamma(2, 30, n)
    plan = rng.choice(["basic", "pro"], n)
    logit = -1 + (plan == "basic") * 1.2 + (spend - 60) / 40
    churn = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({"spend": spend, "plan": plan, "churn": churn})


def test_five_rows_are_refused_with_the_minimum(session: Session, tmp_path: Path) -> None:
    path = write(tmp_path / "tiny.csv", "spend,plan,churn\n10,basic,yes\n80,pro,no\n"
                                        "20,basic,yes\n90,pro,no\n15,pro,yes\n")
    before = store_snapshot()
    with pytest.raises(InvalidDataError) as err:
        submit(TrainingRequest.create(dataset=path, target="churn", budget=5),
               session=session)
    assert "5 rows" in err.value.message and f"at least {MIN_ROWS}" in err.value.message
    assert store_snapshot() == before  # no dataset, no job


def test_a_table_too_wide_for_the_budget_is_refused_before_starting(
        session: Session, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    wide = pd.DataFrame(rng.normal(size=(300, 5000)).round(3),
                        columns=[f"c{i}" for i in range(5000)])
    wide["target"] = rng.integers(0, 2, 300)
    path = tmp_path / "wide.parquet"
    wide.to_parquet(path)
    before = store_snapshot()
    with pytest.raises(InvalidDataError) as err:
        submit(TrainingRequest.create(dataset=path, target="target", budget=15),
               session=session)
    message = err.value.message
    assert "5,000 feature columns" in message and f"at most {max_columns(15):,}" in message
    assert "at least 500 seconds" in message  # how to proceed
    assert store_snapshot() == before  # nothing queued, so nothing can be stuck RUNNING


@pytest.mark.slow
def test_target_leaks_are_dropped_with_a_note_on_job_version_and_leaderboard(
        db: Database, session: Session, tmp_path: Path) -> None:
    frame = _churn()
    frame["churn_copy"] = frame["churn"]                                  # identical
    frame["churn_flag"] = (frame["churn"] == "yes").map({True: "Y", False: "N"})  # relabelled
    path = write(tmp_path / "leaky.csv", frame.to_csv(index=False))
    outcome = _train(db, path, "churn", budget=3, estimators=["linear"], ensemble=False)
    evaluation = outcome.version.evaluation
    assert {"churn_copy", "churn_flag"} <= set(evaluation["dropped_columns"])
    notes = " ".join(evaluation["notes"])
    assert "Dropped column 'churn_copy'" in notes and "identical" in notes
    assert "Dropped column 'churn_flag'" in notes and "exactly one target value" in notes
    assert [c["name"] for c in outcome.version.input_schema] == ["spend", "plan"]
    assert outcome.result.best.score < 0.99  # the leak would have scored 1.0
    job = ledger.get_job(outcome.job_id, session=session)
    assert any("churn_copy" in n for n in job.progress["notes"])


def test_a_numeric_copy_of_a_regression_target_is_dropped(db: Database, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=120)
    frame = pd.DataFrame({"x": x, "noise": rng.normal(size=120),
                          "price": 3 * x + rng.normal(scale=0.5, size=120)})
    frame["price_in_cents"] = frame["price"] * 100 + 5
    path = write(tmp_path / "prices.csv", frame.to_csv(index=False))
    outcome = _train(db, path, "price", budget=2, estimators=["linear"], ensemble=False)
    assert "price_in_cents" in outcome.version.evaluation["dropped_columns"]
    assert "correlation" in outcome.version.evaluation["dropped_columns"]["price_in_cents"]
    assert "x" not in outcome.version.evaluation["dropped_columns"]  # signal is not a leak
