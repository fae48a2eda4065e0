"""The sequence models (LSTM, TCN) on the bundled stock prices: trained under walk-forward
validation by the search, backtested like every market model, saved through the registry and
loaded to the same predictions; a later row never changes an earlier row's prediction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch", reason="the optional 'deep' extra (PyTorch) is not installed: "
                                    "pip install -e '.[deep]'")

from core.automl.backtest import backtest  # noqa: E402
from core.automl.deep.sequence import SequenceNetClassifier  # noqa: E402
from core.automl.search import search  # noqa: E402
from core.errors import InvalidDataError  # noqa: E402
from core.features.targets import market_table  # noqa: E402
from core.registry.artifacts import load_verified, save_pipeline  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "data"
TINY = {"window": 8, "seq_hidden": 8, "hidden_units": 16, "max_epochs": 8, "patience": 3}


def _prices(rows: int = 160) -> pd.DataFrame:
    prices = pd.read_csv(DATA / "stocks.csv")
    prices = prices[prices["ticker"].isin(["AAPL", "IBM"])]
    return prices.groupby("ticker").tail(rows).reset_index(drop=True)


@pytest.mark.slow  # two small walk-forward searches with a backtest each
@pytest.mark.parametrize("cell", ["lstm", "tcn"])
def test_walk_forward_search_backtest_save_load(cell: str, home: Path) -> None:
    table = market_table(_prices(), kind="direction", horizon=1,
                         indicators=("ret_1", "rsi_14"))
    result = search(table.frame, table.target, budget=6, seed=0, time_column="date",
                    estimators=[cell], ensemble=False, max_trials=1)
    data = result.data
    assert data.time is not None and data.ticker_column == "ticker"  # walk-forward
    trial = result.trials[0]
    assert trial.status == "ok", trial.reason
    model = result.pipeline.named_steps["model"].estimator_
    assert model.arch_["kind"] == cell
    assert (model.time_col_, model.ticker_col_) == ("time__date", "category__ticker")
    report = backtest(result, forward_return=table.forward_return)
    assert report.metrics["n_predictions"] == int(trial.cv.covered.sum()) > 0
    assert report.holdout is not None and report.holdout["estimator"] == cell
    assert all(f["train_end"] < f["valid_start"] for f in report.folds)

    stored = save_pipeline(result.pipeline, f"seq-{cell}")
    loaded = load_verified(stored.relpath, stored.fingerprint, f"seq-{cell}:1")
    rows = data.X.iloc[data.holdout]
    np.testing.assert_array_equal(loaded.predict_proba(rows),
                                  result.pipeline.predict_proba(rows))


def _frame(n: int = 90) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"ticker": np.repeat(["A", "B"], n // 2),
                          "date": np.tile(pd.date_range("2024-01-01", periods=n // 2), 2),
                          "ret": rng.normal(size=n), "vol": rng.normal(size=n)})
    y = np.where(frame["ret"].shift(-1).fillna(0) > 0, "up", "down")
    return frame, y


@pytest.mark.parametrize("cell", ["lstm", "tcn"])
def test_a_later_row_never_changes_an_earlier_prediction(cell: str) -> None:
    frame, y = _frame()
    model = SequenceNetClassifier(cell=cell, time_column="date", ticker_column="ticker",
                                  **TINY).fit(frame, y)
    later = frame.assign(date=frame["date"] + pd.Timedelta(days=60))
    base = model.predict_proba(later)
    changed = later.copy()
    last = changed.groupby("ticker")["date"].idxmax()
    changed.loc[last, ["ret", "vol"]] = 1e6  # each ticker's newest row
    after = model.predict_proba(changed)
    keep = ~frame.index.isin(last)
    np.testing.assert_array_equal(after[keep], base[keep])
    assert model.training_["epochs"] >= 1


def test_repeatable_and_needs_a_time_column() -> None:
    frame, y = _frame()
    a = SequenceNetClassifier(time_column="date", ticker_column="ticker", random_state=1,
                              **TINY).fit(frame, y).predict_proba(frame)
    b = SequenceNetClassifier(time_column="date", ticker_column="ticker", random_state=1,
                              **TINY).fit(frame, y).predict_proba(frame)
    np.testing.assert_array_equal(a, b)
    with pytest.raises(InvalidDataError, match="time column"):
        SequenceNetClassifier(**TINY).fit(frame.drop(columns="date"), y)
    with pytest.raises(InvalidDataError, match="ticker column 'symbol'"):
        SequenceNetClassifier(time_column="date", ticker_column="symbol", **TINY).fit(frame, y)
