"""Live drift from real traffic: the serving path samples the rows it scores; a shifted
feature is flagged and named, unshifted traffic is not, and the alert opens after the
configured number of windows."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from app.cli import app
from core.deploy.deployments import deploy
from core.deploy.enums import AlertKind
from core.deploy.simulator import simulate
from core.monitor.alerts import check, set_config
from core.monitor.live import live_drift
from core.store import Database, utcnow
from tests.factories import DATA

CANCER = pd.read_csv(DATA / "breast_cancer.csv").drop(columns=["diagnosis"])


@pytest.fixture
def served(home: Path, session: Session) -> str:
    result = CliRunner().invoke(app, ["train", str(DATA / "breast_cancer.csv"), "--target",
                                      "diagnosis", "--estimator", "linear"])
    assert result.exit_code == 0, result.output
    deploy("breast_cancer", 1, 100, session=session)
    return "breast_cancer"


def test_unshifted_traffic_shows_no_drift(served: str, db: Database, session: Session) -> None:
    simulate(served, CANCER.sample(frac=1, random_state=0), 400, db=db)  # a random resample
    report = live_drift(served, "1h", session=session)
    assert report.rows >= 100 and report.drifted == []
    assert report.prediction.drifted is False


def test_a_shifted_feature_in_live_traffic_is_named_and_alerted(
        served: str, db: Database, session: Session) -> None:
    set_config(served, consecutive=2, session=session)
    shifted = CANCER.assign(mean_texture=CANCER["mean_texture"] * 1.6)
    simulate(served, shifted, 400, db=db)
    report = live_drift(served, "1h", session=session)
    assert "mean_texture" in report.drifted
    assert report.results[0].feature in report.drifted
    now = utcnow()
    check(served, window="1h", now=now, session=session)
    opened = check(served, window="1h", now=now + timedelta(seconds=30), session=session)
    drift = [a for a in opened if a.kind == AlertKind.DRIFT and a.feature == "mean_texture"]
    assert drift and "mean_texture" in drift[0].message


def test_a_feature_missing_in_every_live_row_is_named_and_alerted(
        served: str, db: Database, session: Session) -> None:
    set_config(served, consecutive=1, session=session)
    simulate(served, CANCER.assign(mean_texture=float("nan")), 400, db=db)
    report = live_drift(served, "1h", session=session)
    (result,) = [r for r in report.results if r.feature == "mean_texture"]
    assert result.drifted and result.test == "missing"
    assert report.drifted == ["mean_texture"]
    opened = check(served, window="1h", session=session)
    assert [a.feature for a in opened if a.kind == AlertKind.DRIFT] == ["mean_texture"]
