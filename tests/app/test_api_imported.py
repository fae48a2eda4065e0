"""Evaluate and compare over HTTP on an imported version, which records no target column:
the request names it, or gets a 422 saying to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session
from typer.testing import CliRunner

from app.api import create_app
from app.cli import app
from core.deploy import deploy
from tests.factories import DATA, WINE, import_wine, store_session


@pytest.fixture
def client(session: Session, tmp_path: Path) -> Iterator[TestClient]:
    """wine:1 trained here (target cultivar), wine:2 imported and in production."""
    result = CliRunner().invoke(app, ["train", str(WINE), "--target", "cultivar",
                                      "--estimator", "linear"])
    assert result.exit_code == 0, result.output
    with store_session() as _s:
        deploy("wine", import_wine(session, tmp_path), 100, session=_s)
    with TestClient(create_app(background=False)) as c:
        yield c


def labelled(n: int = 40) -> list[dict]:
    return pd.read_csv(DATA / "wine.csv").sample(n, random_state=2).to_dict("records")


def test_evaluate_an_imported_version_with_the_target_from_the_request(
        client: TestClient) -> None:
    r = client.post("/v1/models/wine/evaluate", json={"records": labelled(),
                                                      "target": "cultivar"})
    assert r.status_code == 200, r.text
    doc = r.json()
    assert (doc["version"], doc["rows"], doc["target"]) == (2, 40, "cultivar")
    assert doc["metrics"]["accuracy"] > 0.9

    r = client.post("/v1/models/wine/evaluate", json={"records": labelled()})
    assert r.status_code == 422
    body = r.json()
    assert body["error"] == "invalid_request"
    assert "wine:2" in body["detail"] and '"target"' in body["detail"]

    # a trained version keeps its own target; naming another one is a mistake, said as such
    r = client.post("/v1/models/wine/evaluate", json={"records": labelled(), "version": 1})
    assert r.status_code == 200 and r.json()["target"] == "cultivar"
    r = client.post("/v1/models/wine/evaluate", json={"records": labelled(), "version": 1,
                                                      "target": "hue"})
    assert r.status_code == 422 and "predicts 'cultivar'" in r.json()["detail"]


def test_compare_a_trained_and_an_imported_version(client: TestClient) -> None:
    body = {"versions": ["wine:1", "wine@production"], "records": labelled()}
    r = client.post("/v1/models/compare", json={**body, "target": "cultivar"})
    assert r.status_code == 200, r.text
    rows = r.json()["versions"]
    assert [row["version"] for row in rows] == [1, 2]
    assert all(row["evaluation"]["metrics"]["accuracy"] > 0.8 for row in rows)

    r = client.post("/v1/models/compare", json=body)
    assert r.status_code == 422 and '"target"' in r.json()["detail"]
