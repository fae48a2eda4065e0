"""The A/B verdict end to end: a real canary answers requests through the REST API, labels
come back through `POST /feedback`, and `GET /scorecard` and `workbench scorecard` give the
same verdict."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.api import create_app
from app.cli import app as cli
from core.deploy import deployments as dep
from tests.factories import record, register, store_session

runner = CliRunner()


@pytest.fixture
def client(home: Path) -> Iterator[TestClient]:
    register()
    register(seed=1)
    with store_session() as s:
        dep.deploy("churn", 1, session=s)
        dep.deploy("churn", 2, 50, session=s)
    with TestClient(create_app(background=False)) as c:
        yield c


def _label(client: TestClient, n: int, stable_right: float) -> dict[int, int]:
    """`n` requests through the canary; the candidate's answers are fed back as right, a
    share `stable_right` of stable's (every k-th) as right and the rest as wrong."""
    served = {1: 0, 2: 0}
    every = round(1 / (1 - stable_right)) if stable_right < 1 else 0
    for i in range(n):
        r = client.post("/v1/models/churn/predict",
                        json={"records": [record(i)], "request_key": f"user{i}"}).json()
        pred, version = r["predictions"][0], r["version"]
        served[version] += 1
        wrong = version == 1 and every and served[1] % every == 0
        actual = ("no" if pred == "yes" else "yes") if wrong else pred
        ok = client.post("/v1/models/churn/feedback",
                         json={"request_id": r["request_id"], "actual": actual})
        assert ok.status_code == 200, ok.text
    return served


def _cli(*args: str):
    return runner.invoke(cli, ["scorecard", *args])


def test_api_and_cli_agree_that_the_better_canary_wins(client: TestClient) -> None:
    served = _label(client, 90, stable_right=0.5)
    assert min(served.values()) >= 30  # both arms have enough labels for a verdict
    card = client.get("/v1/models/churn/scorecard")
    assert card.status_code == 200, card.text
    doc = card.json()
    v = doc["verdict"]
    assert (v["outcome"], v["better"], v["stable"], v["candidate"]) == ("candidate", 2, 1, 2)
    assert (v["stable_labelled"], v["candidate_labelled"]) == (served[1], served[2])
    assert v["candidate_value"] == 1.0 and v["low"] > 0  # the interval excludes 0
    assert "mae" not in doc["versions"][0] and doc["measure"] == "accuracy"

    result = _cli("churn", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == doc  # the same document, field for field
    text = _cli("churn")
    assert text.exit_code == 0 and v["message"] in " ".join(text.stdout.split())


def test_too_few_labels_on_both_adapters(client: TestClient) -> None:
    served = _label(client, 20, stable_right=1.0)
    v = client.get("/v1/models/churn/scorecard").json()["verdict"]
    needed = 2 * 30 - served[1] - served[2]
    assert (v["outcome"], v["needed"], v["better"]) == ("needs_labels", needed, None)
    assert v["message"].startswith(f"Not enough labels yet: {needed} more needed")
    assert json.loads(_cli("churn", "--json").stdout)["verdict"] == v


def test_unknown_model_is_404_and_exit_2(client: TestClient) -> None:
    assert client.get("/v1/models/nope/scorecard").status_code == 404
    result = _cli("nope")
    assert result.exit_code == 2 and "No model named 'nope'" in result.stderr
