"""Search controls (issue 15, item 5): a number of trials beside (or instead of) the time budget,
and user overrides of an estimator's search space, checked against the catalogue with errors
naming the parameter, stored with the job's settings and honoured by the search."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution

from core.automl.catalog import CATALOG
from core.automl.request import (
    DEFAULT_BUDGET_S,
    FIXED_BUDGET_S,
    MAX_TRIALS,
    TRIALS_ONLY_BUDGET_S,
    TrainingRequest,
    check_overrides,
)
from core.automl.search import SearchResult, search
from core.errors import InputError
from core.jobs import ledger
from core.store import Database
from core.usecases.training import run_training
from tests.factories import WINE, store_session, submit

SPACE = {"rf": {"n_estimators": {"low": 50, "high": 60}, "criterion": ["entropy"]},
         "knn": {"n_neighbors": {"low": 3, "high": 5}, "weights": "uniform"}}


def _inside(space: dict[str, Any], params: dict[str, Any]) -> bool:
    """Every overridden parameter of a trial lies within its override."""
    for name, value in space.items():
        if isinstance(value, dict):
            if not value["low"] <= params[name] <= value["high"]:
                return False
        elif params[name] not in (value if isinstance(value, list) else [value]):
            return False
    return True


@pytest.fixture(scope="module")
def searched() -> SearchResult:
    """One small search through the Python API: 6 trials, no budget given."""
    return search(pd.read_csv(WINE), "cultivar", n_trials=6, estimators=["rf", "knn"],
                  search_space=SPACE, ensemble=False)


@pytest.mark.slow
def test_n_trials_stops_the_search_and_the_budget_becomes_the_cap(searched: SearchResult
                                                                  ) -> None:
    assert len(searched.trials) == 6
    assert DEFAULT_BUDGET_S < searched.budget_s <= TRIALS_ONLY_BUDGET_S


@pytest.mark.slow
def test_every_trial_lies_within_the_overrides(searched: SearchResult) -> None:
    by_estimator = {t.estimator for t in searched.trials}
    assert by_estimator == {"rf", "knn"}
    for trial in searched.trials:
        assert _inside(SPACE[trial.estimator], trial.params), (trial.estimator, trial.params)
    # the known-good default (max_features sqrt, 200 trees) was moved inside the range
    assert all(t.params["n_estimators"] <= 60 for t in searched.trials if t.estimator == "rf")


@pytest.mark.parametrize(("space", "words"), [
    ({"xgb": {"max_depth": 3}}, ["Unknown estimator 'xgb'", "xgboost", "hgb"]),
    ({"xgboost": {"depth": 3}}, ["xgboost.depth", "max_depth", "learning_rate"]),
    ({"xgboost": {"max_depth": {"low": 3, "high": 20}}},
     ["xgboost.max_depth", "3..20", "2..10"]),
    ({"xgboost": {"max_depth": {"low": 8, "high": 3}}}, ["xgboost.max_depth", "low (8)"]),
    ({"xgboost": {"max_depth": {"low": 2.5, "high": 3}}},
     ["xgboost.max_depth", "not a whole number"]),
    ({"xgboost": {"learning_rate": "fast"}}, ["xgboost.learning_rate", "not a number"]),
    ({"xgboost": {"learning_rate": 0.9}}, ["xgboost.learning_rate", "0.01..0.3"]),
    ({"rf": {"criterion": ["gini", "purity"]}}, ["rf.criterion", "'purity'", "entropy"]),
    ({"rf": {"criterion": {"low": 1, "high": 2}}}, ["rf.criterion", "choices", "gini"]),
    ({"knn": {"n_neighbors": {"low": 3}}}, ["knn.n_neighbors", "'low' and 'high'"]),
    ({"knn": {"n_neighbors": []}}, ["knn.n_neighbors", "at least one value"]),
    ({"knn": 5}, ["search space of 'knn'"]),
])
def test_invalid_overrides_are_refused_naming_the_parameter(space: dict,
                                                            words: list[str]) -> None:
    with pytest.raises(InputError) as exc:
        TrainingRequest.create(dataset=1, target="y", search_space=space)
    for word in words:
        assert word in exc.value.message


def test_overrides_must_name_a_searched_estimator_and_belong_to_a_search() -> None:
    with pytest.raises(InputError, match="'rf', which is not among the estimators searched"):
        TrainingRequest.create(dataset=1, target="y", estimators=["knn"],
                               search_space={"rf": {"criterion": "gini"}})
    with pytest.raises(InputError, match="a fixed configuration trains its params once"):
        TrainingRequest.create(dataset=1, target="y", kind="fixed", estimator="knn",
                               search_space={"knn": {"weights": "uniform"}})


def test_task_specific_choices_are_checked_once_the_task_is_known() -> None:
    """criterion gini is a classifier's: a regression search refuses it by name."""
    spec = CATALOG["rf"]
    assert isinstance(spec.with_overrides("binary", {"criterion": "gini"}).space["criterion"],
                      CategoricalDistribution)
    with pytest.raises(InputError, match="rf.criterion: 'gini' is not allowed; choose one of "
                                         "squared_error"):
        spec.with_overrides("regression", {"criterion": "gini"})


@pytest.mark.parametrize(("fields", "budget"), [
    ({}, DEFAULT_BUDGET_S),
    ({"n_trials": 5}, TRIALS_ONLY_BUDGET_S),
    ({"n_trials": 5, "budget": 20}, 20.0),
    ({"kind": "fixed", "estimator": "hgb"}, FIXED_BUDGET_S),
])
def test_the_budget_default_follows_what_is_asked(fields: dict, budget: float) -> None:
    assert TrainingRequest.create(dataset=1, target="y", **fields).budget == budget


@pytest.mark.parametrize("n", [0, -1, MAX_TRIALS + 1])
def test_a_number_of_trials_out_of_range_is_refused(n: int) -> None:
    with pytest.raises(InputError, match=f"n_trials must be a whole number from 1 to "
                                         f"{MAX_TRIALS}, got {n}"):
        TrainingRequest.create(dataset=1, target="y", n_trials=n)


def test_kind_fixed_is_train_with_one_estimator() -> None:
    fixed = TrainingRequest.create(dataset=1, target="y", kind="fixed", estimator="knn",
                                   params={"n_neighbors": 7})
    assert not fixed.is_search and fixed.estimators == ("knn",)
    assert TrainingRequest.create(dataset=1, target="y", kind="fixed",
                                  estimators=["hgb"]).params == {}
    with pytest.raises(InputError, match="kind 'fixed' trains one configuration"):
        TrainingRequest.create(dataset=1, target="y", kind="fixed")
    with pytest.raises(InputError, match="use kind 'fixed'"):
        TrainingRequest.create(dataset=1, target="y", kind="search", estimator="knn",
                               params={"n_neighbors": 7})
    with pytest.raises(InputError, match="disagree"):
        TrainingRequest.create(dataset=1, target="y", estimator="knn", estimators=["hgb"])


def test_settings_keep_the_controls_and_a_retrain_reuses_them() -> None:
    request = TrainingRequest.create(dataset=1, target="y", n_trials=4, search_space=SPACE)
    stored = request.settings()
    assert stored["n_trials"] == 4 and stored["search_space"] == SPACE
    again = TrainingRequest.from_settings(stored, dataset=2, target="y")
    assert again.settings() == stored
    assert check_overrides({"n_trials": 9})["n_trials"] == 9
    with pytest.raises(InputError, match="knn.n_neighbors"):
        check_overrides({"search_space": {"knn": {"n_neighbors": 0}}})


def test_a_job_stores_its_controls_on_every_backend(backend_db: Database) -> None:
    with store_session() as s:
        job = submit(s, WINE, "cultivar", n_trials=3, search_space={"knn": {"weights":
                                                                         "uniform"}})
    with store_session() as s:
        stored = ledger.get_job(job.id, session=s).settings
    assert stored["n_trials"] == 3 and stored["search_space"] == {"knn": {"weights": "uniform"}}


def test_a_choice_the_task_rules_out_is_refused_before_anything_is_stored(
        backend_db: Database) -> None:
    with store_session() as s, pytest.raises(InputError, match="rf.criterion"):
        submit(s, WINE, "alcohol", search_space={"rf": {"criterion": "gini"}})
    with store_session() as s:
        assert ledger.list_jobs(session=s) == []


@pytest.mark.slow
def test_a_job_honours_its_controls(db: Database) -> None:
    space = {"knn": {"n_neighbors": {"low": 4, "high": 6}}}
    outcome = run_training(db, TrainingRequest.create(
        dataset=WINE, target="cultivar", estimators=["knn"], n_trials=3, search_space=space,
        ensemble=False))
    with store_session() as s:
        trials = ledger.trials_of(outcome.job_id, session=s)
    assert len(trials) == 3
    assert all(4 <= t.params["n_neighbors"] <= 6 for t in trials)
