"""Market indicator features and targets: no lookahead (hypothesis), per-ticker computation,
input row order kept, targets with the rows that cannot have one dropped."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import InvalidDataError
from core.features.finance import (
    INDICATOR_NAMES,
    INDICATORS,
    MarketFeatures,
    add_market_features,
    asof_join,
)
from core.features.targets import build_target, forward_returns, market_table
from tests.factories import DATA

PROPERTY = settings(max_examples=30, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@st.composite
def price_tables(draw: st.DrawFn) -> pd.DataFrame:
    """1-3 tickers, each with its own run of distinct business days, OHLCV, rows shuffled."""
    tickers = draw(st.lists(st.sampled_from(["AAA", "BBB", "CCC"]), min_size=1, max_size=3,
                            unique=True))
    parts = []
    for t in tickers:
        n = draw(st.integers(5, 90))
        start = draw(st.integers(0, 30))
        steps = draw(st.lists(st.floats(-0.08, 0.08), min_size=n, max_size=n))
        price = 50 * np.exp(np.cumsum(steps))
        vol = draw(st.lists(st.integers(0, 10**7), min_size=n, max_size=n))
        days = pd.bdate_range("2020-01-01", periods=n + start)[start:]
        parts.append(pd.DataFrame({"ticker": t, "date": days.strftime("%Y-%m-%d"),
                                   "close": price, "high": price * 1.01,
                                   "low": price * 0.99, "volume": vol}))
    frame = pd.concat(parts, ignore_index=True)
    seed = draw(st.integers(0, 2**31 - 1))
    return frame.sample(frac=1, random_state=seed).reset_index(drop=True)


@PROPERTY
@given(frame=price_tables(), data=st.data())
def test_changing_future_rows_never_changes_earlier_features(frame: pd.DataFrame,
                                                            data: st.DataObject) -> None:
    dates = sorted(frame["date"].unique())
    cut = data.draw(st.sampled_from(dates))
    future = frame["date"] > cut
    seed = data.draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    changed = frame.copy()
    k = int(future.sum())
    changed.loc[future, "close"] = rng.uniform(1, 500, k)
    changed.loc[future, "high"] = rng.uniform(1, 500, k)
    changed.loc[future, "low"] = rng.uniform(1, 500, k)
    changed.loc[future, "volume"] = rng.integers(0, 10**8, k)
    features = MarketFeatures().fit(frame)
    before = features.transform(frame)
    after = MarketFeatures().fit(changed).transform(changed)
    names = list(features.get_feature_names_out())
    past = ~future.to_numpy()
    np.testing.assert_array_equal(before.loc[past, names].to_numpy(),
                                  after.loc[past, names].to_numpy())


@PROPERTY
@given(frame=price_tables(), data=st.data())
def test_deleting_future_rows_never_changes_earlier_features(frame: pd.DataFrame,
                                                            data: st.DataObject) -> None:
    cut = data.draw(st.sampled_from(sorted(frame["date"].unique())))
    kept = frame[frame["date"] <= cut]
    full = MarketFeatures().fit(frame).transform(frame)
    part = MarketFeatures().fit(kept).transform(kept)
    pd.testing.assert_frame_equal(full.loc[kept.index], part)


@PROPERTY
@given(frame=price_tables())
def test_each_ticker_is_computed_alone_and_row_order_is_kept(frame: pd.DataFrame) -> None:
    together = MarketFeatures().fit(frame).transform(frame)
    pd.testing.assert_frame_equal(together[frame.columns], frame)
    names = list(MarketFeatures().fit(frame).get_feature_names_out())
    for _, rows in frame.groupby("ticker"):
        alone = MarketFeatures().fit(rows).transform(rows)
        np.testing.assert_allclose(together.loc[rows.index, names].to_numpy(dtype=float),
                                   alone[names].to_numpy(dtype=float), rtol=1e-12,
                                   equal_nan=True)


@PROPERTY
@given(frame=price_tables(), horizon=st.integers(1, 5))
def test_target_is_the_same_tickers_price_h_rows_later(frame: pd.DataFrame,
                                                       horizon: int) -> None:
    fwd = forward_returns(frame, price_column="close", time_column="date",
                          ticker_column="ticker", horizon=horizon)
    for _, rows in frame.groupby("ticker"):
        ordered = rows.sort_values("date")
        expected = ordered["close"].shift(-horizon) / ordered["close"] - 1
        np.testing.assert_allclose(fwd.loc[ordered.index], expected, equal_nan=True)
    table = build_target(frame, kind="direction", horizon=horizon, price_column="close")
    sizes = frame.groupby("ticker").size()
    assert table.dropped == int(np.minimum(sizes, horizon).sum())
    assert len(table.frame) == len(frame) - table.dropped == len(table.forward_return)
    assert set(table.frame[table.target]) <= {"up", "down"}
    assert ((table.forward_return > 0) == (table.frame[table.target] == "up")).all()
    if table.dropped:
        assert any(f"{table.dropped} rows were dropped" in n for n in table.notes)


def test_indicator_values_on_a_known_series() -> None:
    price = pd.Series([10.0, 11.0, 12.1, 11.0, 12.0, 13.0] * 10)
    frame = pd.DataFrame({"date": pd.bdate_range("2021-01-01", periods=len(price)),
                          "close": price})
    out = MarketFeatures(indicators=("ret_1", "logret_1_lag1", "sma_ratio_10",
                                     "rsi_14", "day_of_week")).fit_transform(frame)
    assert out["ret_1"].iloc[1] == pytest.approx(0.1)
    assert out["logret_1_lag1"].iloc[2] == pytest.approx(np.log(1.1))
    assert np.isnan(out["sma_ratio_10"].iloc[8]) and not np.isnan(out["sma_ratio_10"].iloc[9])
    assert out["sma_ratio_10"].iloc[9] == pytest.approx(price.iloc[9] / price[:10].mean() - 1)
    assert out["rsi_14"].dropna().between(0, 100).all()
    assert list(out["day_of_week"].iloc[:3]) == [4.0, 0.0, 1.0]  # Fri 2021-01-01, Mon, Tue


def test_the_indicator_set_is_data_and_unusable_ones_are_skipped_with_a_reason() -> None:
    assert len(INDICATOR_NAMES) == len(set(INDICATOR_NAMES)) == len(INDICATORS)
    frame = pd.DataFrame({"date": pd.bdate_range("2021-01-01", periods=30).astype(str),
                          "price": np.linspace(10, 20, 30)})
    out, notes = add_market_features(frame)
    assert "volume_ratio_20" not in out and "ret_1" in out
    assert any("'volume_ratio_20' was skipped" in n and "volume" in n for n in notes)
    with pytest.raises(InvalidDataError, match="Unknown indicators"):
        MarketFeatures(indicators=("nope",)).fit(frame)
    with pytest.raises(InvalidDataError, match="time column"):
        MarketFeatures().fit(frame.drop(columns=["date"]))


def test_sample_stock_data_gets_features_and_a_target() -> None:
    prices = pd.read_csv(DATA / "stocks.csv")
    assert {"ticker", "date", "open", "high", "low", "close", "volume", "adj_close"} <= set(
        prices.columns)
    assert prices["ticker"].nunique() >= 4 and len(prices) > 10_000
    table = market_table(prices, kind="return", horizon=5)
    assert table.price_column == "adj_close" and table.ticker_column == "ticker"
    assert table.dropped == 5 * prices["ticker"].nunique()
    assert table.frame[table.target].equals(table.forward_return.rename(table.target))
    assert set(INDICATOR_NAMES) <= set(table.frame.columns)


def test_asof_join_uses_only_published_macro_values() -> None:
    macro = pd.read_csv(DATA / "us_macro.csv")
    assert len(macro) > 200 and {"quarter_end", "realgdp", "unemp", "tbilrate"} <= set(macro)
    days = pd.DataFrame({"date": ["2008-03-31", "2008-04-29", "2008-05-01", "1950-01-01"]})
    out = asof_join(days, macro, time_column="date", table_time_column="quarter_end",
                    available_after="30D", columns=["realgdp"], prefix="macro_")
    q4_2007 = macro.loc[macro["quarter_end"] == "2007-12-31", "realgdp"].item()
    q1_2008 = macro.loc[macro["quarter_end"] == "2008-03-31", "realgdp"].item()
    # 2008Q1 ends on 31 March and counts as known 30 days later (30 April)
    assert list(out["macro_realgdp"].iloc[:3]) == [q4_2007, q4_2007, q1_2008]
    assert np.isnan(out["macro_realgdp"].iloc[3])
    assert list(out["date"]) == list(days["date"])
