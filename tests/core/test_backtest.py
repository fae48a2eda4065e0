"""Backtest view data: hit rate, long/flat equity against buy-and-hold with costs, per-fold
scores and the untouched holdout, from a search validated in time order."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from core.automl.backtest import backtest
from core.automl.metrics import get_metric
from core.automl.search import SearchResult, TrialResult, search
from core.automl.train import CVResult, TrainingData
from core.data.profile import ProblemType
from core.errors import InvalidDataError
from core.features.targets import market_table
from tests.factories import DATA


def _stub(proba_up: list[float], actual: list[str], tickers: list[str],
          days: list[str]) -> SearchResult:
    """A finished search over hand-made rows, every row out of fold."""
    n = len(actual)
    X = pd.DataFrame({"date": days, "ticker": tickers})
    data = TrainingData(X=X, y=pd.Series(actual), schema=[], metric=get_metric("roc_auc",
                                                                                "binary"),
                        problem=ProblemType("binary", "test", ["down", "up"]),
                        splits=[(np.arange(0), np.arange(n))], time_column="date",
                        time=pd.Series(pd.to_datetime(days)), ticker_column="ticker")
    proba = np.column_stack([1 - np.asarray(proba_up), proba_up])
    pred = np.where(proba[:, 1] > 0.5, "up", "down").astype(object)
    cv = CVResult(scores=[0.5], fit_time_s=0, predict_ms_per_1k=0, oof_pred=pred,
                  oof_proba=proba, covered=np.ones(n, dtype=bool))
    best = TrialResult(0, "linear", {}, "ok", cv=cv)
    return SearchResult(data=data, trials=[best], best=best, pipeline=None, evaluation={},
                        elapsed_s=0, budget_s=0, best_single=best)


def test_long_flat_equity_hit_rate_and_costs_by_hand() -> None:
    days = ["2021-01-04", "2021-01-05", "2021-01-06", "2021-01-07"]
    result = _stub([0.9, 0.2, 0.8, 0.7], ["up", "down", "up", "down"], ["A"] * 4, days)
    report = backtest(result, forward_return=[0.10, -0.05, 0.02, -0.01], cost_bps=10)
    m = report.metrics
    assert m["hit_rate"] == pytest.approx(0.75)
    # long, flat, long, long: three changes of position at 10 bps each
    strategy = [0.1 - 0.001, -0.001, 0.02 - 0.001, -0.01]
    hold = [0.1 - 0.001, -0.05, 0.02, -0.01]
    assert list(report.equity["strategy_return"]) == pytest.approx(strategy)
    assert list(report.equity["hold_return"]) == pytest.approx(hold)
    assert m["strategy_total_return"] == pytest.approx(np.prod(np.add(1, strategy)) - 1)
    assert m["buy_and_hold_total_return"] == pytest.approx(np.prod(np.add(1, hold)) - 1)
    assert m["trades"] == 3 and m["exposure"] == pytest.approx(0.75)
    free = backtest(result, forward_return=[0.10, -0.05, 0.02, -0.01], cost_bps=0)
    assert free.metrics["strategy_total_return"] > m["strategy_total_return"]


def test_several_tickers_are_an_equal_weight_portfolio_and_horizons_do_not_overlap() -> None:
    days = ["2021-01-04", "2021-01-04", "2021-01-05", "2021-01-05", "2021-01-06",
            "2021-01-06"]
    result = _stub([0.9, 0.1] * 3, ["up", "down"] * 3, ["A", "B"] * 3, days)
    fwd = [0.04, -0.02, 0.01, 0.03, 0.02, -0.01]
    daily = backtest(result, forward_return=fwd, cost_bps=0)
    assert list(daily.equity["strategy_return"]) == pytest.approx([0.02, 0.005, 0.01])
    assert list(daily.equity["hold_return"]) == pytest.approx([0.01, 0.02, 0.005])
    stepped = backtest(result, forward_return=fwd, cost_bps=0, horizon=2)
    assert list(stepped.equity["time"].dt.strftime("%Y-%m-%d")) == ["2021-01-04",
                                                                     "2021-01-06"]


def test_backtest_needs_time_order_and_matching_returns() -> None:
    result = _stub([0.9, 0.2], ["up", "down"], ["A", "A"], ["2021-01-04", "2021-01-05"])
    with pytest.raises(InvalidDataError, match="forward_return has 3 values"):
        backtest(result, forward_return=[0.1, 0.2, 0.3])
    result.data.time = None
    with pytest.raises(InvalidDataError, match="time order"):
        backtest(result, forward_return=[0.1, 0.2])


@pytest.mark.slow  # a real market search
def test_backtest_of_a_search_on_the_sample_stock_data() -> None:
    prices = pd.read_csv(DATA / "stocks.csv")
    prices = prices[prices["ticker"].isin(["MSFT", "IBM"]) & (prices["date"] >= "2008-01-01")]
    table = market_table(prices, kind="direction", horizon=1)
    result = search(table.frame, table.target, budget=3, seed=0, time_column="date",
                    estimators=["linear", "knn"])
    report = backtest(result, forward_return=table.forward_return, cost_bps=5)
    covered = int(result.best.cv.covered.sum())
    assert report.metrics["n_predictions"] == covered == len(report.series)
    assert report.series["time"].is_monotonic_increasing
    assert 0.3 < report.metrics["hit_rate"] < 0.7
    assert report.equity["time"].is_monotonic_increasing and report.metrics["periods"] > 100
    assert [f["fold"] for f in report.folds] == [1, 2, 3, 4, 5]
    assert all(f["train_end"] < f["valid_start"] for f in report.folds)
    hold = report.holdout
    assert hold is not None and hold["rows"] == len(result.data.holdout)
    assert hold["start"] > report.folds[-1]["valid_end"] and "roc_auc" in hold
    doc = json.loads(json.dumps(report.to_dict()))  # JSON-ready for --json and the UI
    assert {"metrics", "folds", "holdout", "equity", "predictions", "notes"} <= set(doc)
    assert len(doc["equity"]) <= 500 and {"time", "strategy", "buy_and_hold"} <= set(
        doc["equity"][0])
    without = backtest(result, holdout=False)  # a direction target needs forward returns
    assert without.equity.empty and without.holdout is None
    assert any("No forward returns" in n for n in without.notes)
