"""The one training request: every adapter builds it, it refuses what needs no data with the
messages users always got, and a job stores exactly the settings it always stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.automl.request import SETTINGS, TrainingRequest, check_overrides
from core.errors import InvalidDataError, WorkbenchError


@pytest.mark.parametrize(("fields", "error", "message"), [
    ({"task": "magic"}, InvalidDataError,
     "Unknown task 'magic': use auto, classification or regression."),
    ({"budget": 0}, WorkbenchError, "The budget must be a positive number of seconds"),
    ({"budget": 1e9}, WorkbenchError, "The budget must be at most 86400 seconds"),
    ({"estimators": ["svm9"]}, WorkbenchError, "Unknown estimator 'svm9'. Choose one of:"),
    ({"params": {"C": 1}}, WorkbenchError,
     "Training one configuration needs exactly one estimator."),
    ({"name": "no spaces"}, WorkbenchError, "'no spaces' is not a valid model name"),
    ({"search": "anneal"}, WorkbenchError,
     "Unknown search method 'anneal': use tpe, random or grid."),
    ({"seed": -1}, WorkbenchError, "The seed must be a whole number from 0"),
    ({"market": {"kind": "sideways"}}, InvalidDataError, "Unknown target kind 'sideways'"),
    ({"market": {"horizon": 0}}, WorkbenchError, "The horizon must be at least 1 period"),
])
def test_a_bad_request_is_refused_with_its_message(fields: dict, error: type,
                                                  message: str) -> None:
    with pytest.raises(error) as exc:
        TrainingRequest.create(dataset=1, target="y", **fields)
    assert message in exc.value.message


def test_a_job_stores_the_settings_it_always_stored() -> None:
    request = TrainingRequest.create(
        dataset=Path("prices.csv"), target="close", task="auto", metric="auto", budget=30,
        estimators=["linear"], search="random", time_column="date",
        market={"kind": "return", "horizon": 5, "ticker_column": None, "cost_bps": 2.0})
    assert request.settings() == {
        "budget": 30.0, "seed": 0, "time_column": "date", "task": None, "metric": None,
        "estimators": ["linear"], "params": None, "sampler": "random", "ensemble": True,
        "market": {"kind": "return", "horizon": 5, "ticker_column": None, "cost_bps": 2.0}}
    assert list(request.settings()) == list(SETTINGS)
    again = TrainingRequest.from_settings(request.settings(), dataset=3, target="close")
    assert again.settings() == request.settings() and again.dataset == 3


def test_a_retrain_takes_the_last_settings_with_overrides_on_top() -> None:
    last = TrainingRequest.create(dataset=1, target="y", estimators=["knn"],
                                  params={"n_neighbors": 200}, budget=9).settings()
    plain = TrainingRequest.from_settings(last, {"estimators": None, "params": None,
                                                 "budget": 4}, dataset=2, target="y")
    assert (plain.estimators, plain.params, plain.budget) == (None, None, 4.0)
    assert check_overrides({"budget": 4, "estimators": None}) == {"budget": 4,
                                                                  "estimators": None}
    with pytest.raises(WorkbenchError, match="Unknown training setting"):
        check_overrides({"budgett": 4})
    with pytest.raises(WorkbenchError, match="positive number of seconds"):
        check_overrides({"budget": -4})


def test_the_wire_spells_the_search_method_search() -> None:
    """POST /v1/jobs always took "search"; the stored settings always said "sampler"."""
    body = TrainingRequest.model_validate({"dataset": "wine", "target": "cultivar",
                                           "search": "grid"})
    assert body.sampler == "grid" and body.settings()["sampler"] == "grid"
    schema = TrainingRequest.model_json_schema()
    assert "search" in schema["properties"] and "sampler" not in schema["properties"]
    assert schema["properties"]["dataset"]["anyOf"] == [{"type": "integer"},
                                                        {"type": "string"}]


def test_a_retrain_keeps_the_portfolio_turned_off() -> None:
    default = TrainingRequest.create(dataset=1, target="y").settings()
    assert "portfolio" not in default  # default jobs store what they always stored
    off = TrainingRequest.create(dataset=1, target="y", portfolio=False).settings()
    assert off["portfolio"] is False
    again = TrainingRequest.from_settings(off, dataset=2, target="y")
    assert again.portfolio is False
    back_on = TrainingRequest.from_settings(off, {"portfolio": None}, dataset=2, target="y")
    assert back_on.portfolio is True
