"""The zero-shot portfolio (issue 17): the shipped file is valid against the catalogue and was
learned on tables disjoint from the evaluation suite; a search tries its configurations
first (only allowed families), can be told not to, and survives a bad file."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd
import pytest

from bench.automl_suite import TASKS
from bench.portfolio_build import META_TASKS, check_disjoint
from core.automl import portfolio
from core.automl.catalog import CATALOG, specs_for
from core.automl.request import TrainingRequest
from core.automl.search import search
from tests.factories import training_frame

MINE = {"format": portfolio.FORMAT, "version": portfolio.VERSION, "portfolios": {
    "binary": [{"estimator": "knn", "params": {"n_neighbors": 7, "weights": "uniform"}},
               {"estimator": "linear", "params": {"C": 0.5}}]}}


def _frame() -> pd.DataFrame:
    X, y = training_frame(n=80)
    return X.assign(churn=y)


@pytest.fixture
def shipped_as(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Point the search at a portfolio file written here (the loader caches by path)."""
    def use(document: object, name: str = "portfolio.json") -> Path:
        path = tmp_path / name
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        monkeypatch.setattr(portfolio, "PORTFOLIO_PATH", path)
        return path
    return use


def test_shipped_portfolio_is_valid_against_the_catalogue() -> None:
    document = json.loads(portfolio.PORTFOLIO_PATH.read_text())
    parsed = portfolio.load()
    for kind in portfolio.KINDS:
        raw = document["portfolios"][kind]
        assert raw and len(parsed[kind]) == len(raw), f"{kind}: an entry was dropped"
        for entry in parsed[kind]:
            assert kind in CATALOG[entry.estimator].tasks
    assert document["meta_suite"] and document["command"] and document["built"]


def test_meta_suite_is_disjoint_from_the_evaluation_suite() -> None:
    check_disjoint()
    shipped = {m["source"] for m in json.loads(portfolio.PORTFOLIO_PATH.read_text())
               ["meta_suite"]}
    assert shipped <= {m.source for m in META_TASKS}
    assert not shipped & {t.source for t in TASKS}
    assert len(shipped) >= 12
    with pytest.raises(AssertionError, match="overlap"):
        check_disjoint([*META_TASKS, TASKS[0]])  # type: ignore[list-item]


def test_the_first_trials_are_the_portfolios(shipped_as) -> None:
    shipped_as(MINE)
    result = search(_frame(), "churn", budget=60, n_trials=2, task="binary", ensemble=False)
    assert [(t.estimator, t.params) for t in result.trials] == [
        ("knn", {"n_neighbors": 7, "weights": "uniform"}), ("linear", {"C": 0.5})]


def test_only_families_the_user_allowed_are_seeded(shipped_as) -> None:
    shipped_as(MINE)
    result = search(_frame(), "churn", budget=60, n_trials=1, task="binary",
                    estimators=["linear"], ensemble=False)
    assert (result.trials[0].estimator, result.trials[0].params) == ("linear", {"C": 0.5})


def test_the_shipped_portfolio_starts_a_default_search() -> None:
    expected = portfolio.points(specs_for("binary"), "binary")[:1]
    result = search(_frame(), "churn", budget=60, n_trials=1, task="binary", ensemble=False)
    assert [(t.estimator, t.params) for t in result.trials] == expected


def test_off_switch_starts_from_the_catalogue_defaults(shipped_as) -> None:
    shipped_as(MINE)
    result = search(_frame(), "churn", budget=60, n_trials=1, task="binary", ensemble=False,
                    portfolio=False)
    assert (result.trials[0].estimator, result.trials[0].params) == ("linear", {"C": 1.0})
    assert TrainingRequest.create(dataset=0, target="y").portfolio is True
    assert TrainingRequest.create(dataset=0, target="y", portfolio=False).portfolio is False


CORRUPT = ["{not json", json.dumps([1, 2]), json.dumps({**MINE, "format": "flaml-portfolio"}),
           json.dumps({**MINE, "version": 99}), json.dumps({**MINE, "portfolios": []})]


@pytest.mark.parametrize("document", CORRUPT)
def test_a_corrupt_or_foreign_file_is_refused(shipped_as, document, caplog) -> None:
    path = shipped_as(document, name=f"p{CORRUPT.index(document)}.json")
    with pytest.raises(portfolio.PortfolioError):
        portfolio.load(path)
    with caplog.at_level(logging.WARNING, logger="core.automl.portfolio"):
        assert portfolio.points(specs_for("binary"), "binary") == []
    assert "catalogue's defaults" in caplog.text


def test_a_search_with_a_refused_file_starts_from_the_defaults(shipped_as) -> None:
    shipped_as(CORRUPT[0])
    result = search(_frame(), "churn", budget=60, n_trials=1, task="binary", ensemble=False)
    assert (result.trials[0].estimator, result.trials[0].params) == ("linear", {"C": 1.0})


def test_entries_outside_the_space_are_dropped_with_a_note(shipped_as, caplog) -> None:
    bad = {**MINE, "portfolios": {"binary": [
        {"estimator": "knn", "params": {"n_neighbors": 1000}},        # outside 3..100
        {"estimator": "knn", "params": {"leaf_size": 5}},             # not searched
        {"estimator": "no_such_model", "params": {}},
        {"estimator": "knn", "params": {"weights": "cosine"}},        # not a choice
        {"estimator": "linear", "params": {"C": 0.5}}],
        "ternary": []}}
    path = shipped_as(bad)
    with caplog.at_level(logging.WARNING, logger="core.automl.portfolio"):
        parsed = portfolio.load(path)
    assert parsed["binary"] == [portfolio.Entry("linear", {"C": 0.5})]
    assert caplog.text.count("dropped") == 4 and "ternary" in caplog.text


def test_a_users_narrower_space_skips_entries_outside_it(shipped_as) -> None:
    shipped_as(MINE)
    result = search(_frame(), "churn", budget=60, n_trials=1, task="binary", ensemble=False,
                    search_space={"knn": {"n_neighbors": {"low": 20, "high": 30}}})
    assert (result.trials[0].estimator, result.trials[0].params) == ("linear", {"C": 0.5})


def test_json_numbers_take_the_spaces_types() -> None:
    space = CATALOG["rf"].space
    assert portfolio.fit_to_space({"n_estimators": 200.0, "max_features": 1.0}, space) == {
        "n_estimators": 200, "max_features": 1.0}
    assert portfolio.fit_to_space({"n_estimators": 200.5}, space) is None
    assert portfolio.fit_to_space({"n_estimators": True}, space) is None
