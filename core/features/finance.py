"""Market indicator features as a scikit-learn transformer, computed per ticker without lookahead.

Every feature of a row uses only that ticker's rows at or before the row's time: rows are
sorted by (ticker, time) with a stable sort, each indicator is a causal computation (shift,
rolling window, exponential average), and the result is put back in the input row order.
`tests/core/test_market.py` proves it with hypothesis: changing any later row never changes an
earlier row's features.

The indicator set is data (`INDICATORS`): each entry names its computation, its parameters and
the input roles it needs (price, volume, high/low, close). Indicators whose inputs the table
lacks are skipped, and `MarketFeatures.skipped_` says why.

Prices are turned into scale-free quantities (returns, ratios to averages, z-scores), so one
model can learn across tickers whose price levels differ by orders of magnitude. Use a price
adjusted for splits and dividends when the table has one (`adj_close` is preferred over
`close`): a 2-for-1 split is otherwise a -50 % "return".

The transformer is stateless (fitting learns nothing from the rows), so it can be applied to a
whole table before validation without leaking across folds; the one requirement is that it sees
each row's history, which is why it runs before the split rather than inside each fold.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

from core.errors import InvalidDataError

ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "time": ("date", "datetime", "timestamp", "time", "day", "trade_date"),
    "ticker": ("ticker", "symbol", "asset", "instrument", "security", "isin", "coin", "pair"),
    "price": ("adj_close", "adj close", "adjusted_close", "adjclose", "close", "price",
              "last", "value"),
    "volume": ("volume", "vol"),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
}


@dataclass(frozen=True)
class Indicator:
    """One feature: `compute` names a function in COMPUTATIONS, called with the ticker's rows
    (sorted by time) and `params`."""

    name: str
    compute: str
    params: dict[str, Any] = field(default_factory=dict)
    needs: tuple[str, ...] = ("price",)
    description: str = ""


INDICATORS: tuple[Indicator, ...] = (
    Indicator("ret_1", "pct_return", {"periods": 1}, description="1-period simple return"),
    Indicator("ret_5", "pct_return", {"periods": 5}, description="5-period simple return"),
    Indicator("logret_1", "log_return", {"periods": 1}, description="1-period log return"),
    Indicator("logret_1_lag1", "lagged_log_return", {"lag": 1},
              description="the previous period's log return"),
    Indicator("logret_1_lag2", "lagged_log_return", {"lag": 2},
              description="the log return two periods back"),
    Indicator("logret_1_lag3", "lagged_log_return", {"lag": 3},
              description="the log return three periods back"),
    Indicator("logret_1_lag5", "lagged_log_return", {"lag": 5},
              description="the log return five periods back"),
    Indicator("sma_ratio_10", "sma_ratio", {"window": 10},
              description="price / 10-period moving average - 1"),
    Indicator("sma_ratio_50", "sma_ratio", {"window": 50},
              description="price / 50-period moving average - 1"),
    Indicator("zscore_20", "zscore", {"window": 20},
              description="(price - 20-period mean) / 20-period std"),
    Indicator("volatility_20", "volatility", {"window": 20},
              description="20-period std of log returns"),
    Indicator("momentum_20", "pct_return", {"periods": 20},
              description="20-period momentum (return)"),
    Indicator("momentum_60", "pct_return", {"periods": 60},
              description="60-period momentum (return)"),
    Indicator("rsi_14", "rsi", {"window": 14},
              description="relative strength index, Wilder smoothing, 0-100"),
    Indicator("macd", "macd", {"fast": 12, "slow": 26, "signal": 9, "output": "macd"},
              description="EMA(12) - EMA(26), divided by price"),
    Indicator("macd_signal", "macd", {"fast": 12, "slow": 26, "signal": 9, "output": "signal"},
              description="EMA(9) of the MACD line"),
    Indicator("macd_hist", "macd", {"fast": 12, "slow": 26, "signal": 9, "output": "hist"},
              description="MACD line - signal line"),
    Indicator("bb_pctb_20", "bollinger", {"window": 20, "k": 2.0, "output": "pctb"},
              description="position within the 20-period, 2-std Bollinger band (0 = lower)"),
    Indicator("bb_width_20", "bollinger", {"window": 20, "k": 2.0, "output": "width"},
              description="Bollinger band width / moving average"),
    Indicator("volume_ratio_20", "volume_ratio", {"window": 20}, needs=("volume",),
              description="volume / 20-period average volume"),
    Indicator("volume_z_20", "volume_z", {"window": 20}, needs=("volume",),
              description="z-score of log volume over 20 periods"),
    Indicator("range_hl", "high_low_range", {}, needs=("high", "low", "close"),
              description="(high - low) / close of the same period"),
    Indicator("day_of_week", "calendar", {"part": "day_of_week"}, needs=("time",),
              description="0 = Monday"),
    Indicator("day_of_month", "calendar", {"part": "day"}, needs=("time",)),
    Indicator("month", "calendar", {"part": "month"}, needs=("time",)),
    Indicator("quarter", "calendar", {"part": "quarter"}, needs=("time",)),
    Indicator("days_since_prev", "days_since_prev", {}, needs=("time",),
              description="calendar days since the ticker's previous row"),
)
INDICATOR_NAMES = tuple(i.name for i in INDICATORS)


# -- computations: each takes the ticker's rows sorted by time, returns one float Series -------

def _pct_return(g: pd.DataFrame, periods: int) -> pd.Series:
    return g["price"] / g["price"].shift(periods) - 1


def _log_return(g: pd.DataFrame, periods: int) -> pd.Series:
    return np.log(g["price"].where(g["price"] > 0)).diff(periods)


def _lagged_log_return(g: pd.DataFrame, lag: int) -> pd.Series:
    return _log_return(g, 1).shift(lag)


def _sma_ratio(g: pd.DataFrame, window: int) -> pd.Series:
    return g["price"] / g["price"].rolling(window, min_periods=window).mean() - 1


def _zscore(g: pd.DataFrame, window: int) -> pd.Series:
    roll = g["price"].rolling(window, min_periods=window)
    return (g["price"] - roll.mean()) / roll.std().replace(0, np.nan)


def _volatility(g: pd.DataFrame, window: int) -> pd.Series:
    return _log_return(g, 1).rolling(window, min_periods=window).std()


def _rsi(g: pd.DataFrame, window: int) -> pd.Series:
    delta = g["price"].diff()
    up = delta.clip(lower=0).ewm(alpha=1 / window, adjust=False, min_periods=window).mean()
    down = (-delta).clip(lower=0).ewm(alpha=1 / window, adjust=False,
                                      min_periods=window).mean()
    rsi = 100 - 100 / (1 + up / down.replace(0, np.nan))
    flat = (down == 0) & up.notna()  # no losses in the window: 100, or 50 if nothing moved
    return rsi.mask(flat, np.where(up > 0, 100.0, 50.0))


def _macd(g: pd.DataFrame, fast: int, slow: int, signal: int, output: str) -> pd.Series:
    price = g["price"]
    line = (price.ewm(span=fast, adjust=False, min_periods=fast).mean()
            - price.ewm(span=slow, adjust=False, min_periods=slow).mean()) / price
    sig = line.ewm(span=signal, adjust=False, min_periods=signal).mean()
    return {"macd": line, "signal": sig, "hist": line - sig}[output]


def _bollinger(g: pd.DataFrame, window: int, k: float, output: str) -> pd.Series:
    roll = g["price"].rolling(window, min_periods=window)
    mean, std = roll.mean(), roll.std()
    if output == "width":
        return 2 * k * std / mean
    return (g["price"] - (mean - k * std)) / (2 * k * std).replace(0, np.nan)


def _volume_ratio(g: pd.DataFrame, window: int) -> pd.Series:
    avg = g["volume"].rolling(window, min_periods=window).mean()
    return g["volume"] / avg.replace(0, np.nan)


def _volume_z(g: pd.DataFrame, window: int) -> pd.Series:
    logv = np.log1p(g["volume"].clip(lower=0))
    roll = logv.rolling(window, min_periods=window)
    return (logv - roll.mean()) / roll.std().replace(0, np.nan)


def _high_low_range(g: pd.DataFrame) -> pd.Series:
    return (g["high"] - g["low"]) / g["close"].replace(0, np.nan)


def _calendar(g: pd.DataFrame, part: str) -> pd.Series:
    return getattr(g["time"].dt, part).astype("float64")


def _days_since_prev(g: pd.DataFrame) -> pd.Series:
    return g["time"].diff().dt.total_seconds() / 86400.0


COMPUTATIONS: dict[str, Callable[..., pd.Series]] = {
    "pct_return": _pct_return, "log_return": _log_return,
    "lagged_log_return": _lagged_log_return, "sma_ratio": _sma_ratio, "zscore": _zscore,
    "volatility": _volatility, "rsi": _rsi, "macd": _macd, "bollinger": _bollinger,
    "volume_ratio": _volume_ratio, "volume_z": _volume_z, "high_low_range": _high_low_range,
    "calendar": _calendar, "days_since_prev": _days_since_prev,
}


# -- column roles ---------------------------------------------------------------------------

def find_column(columns: list[str], role: str) -> str | None:
    """The first column (case-insensitive) whose name is one of the role's usual names."""
    lowered = {str(c).strip().lower(): str(c) for c in columns}
    for candidate in ROLE_NAMES[role]:
        if candidate in lowered:
            return lowered[candidate]
    return None


def market_roles(frame: pd.DataFrame, **given: str | None) -> dict[str, str | None]:
    """Which column plays which role (time, ticker, price, volume, high, low, close): the
    caller's choice where given, else found by name."""
    columns = [str(c) for c in frame.columns]
    roles: dict[str, str | None] = {}
    for role in ROLE_NAMES:
        chosen = given.get(role)
        if chosen is not None and chosen not in columns:
            raise InvalidDataError(f"The {role} column {chosen!r} is not in the data.")
        roles[role] = chosen if chosen is not None else find_column(columns, role)
    if roles["close"] is None:
        roles["close"] = roles["price"]
    return roles


def parse_time(values: pd.Series) -> pd.Series:
    """Timestamps as timezone-naive datetime64 (unparseable values become NaT)."""
    parsed = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
    return parsed.dt.tz_localize(None)


def per_ticker_order(time: pd.Series, ticker: pd.Series | None) -> tuple[np.ndarray, np.ndarray]:
    """Positions of rows with a known time, sorted by (ticker, time) with a stable sort, and
    the group code of each of those rows."""
    codes = (pd.factorize(ticker.astype(str).where(ticker.notna(), "__missing__"))[0]
             if ticker is not None else np.zeros(len(time), dtype=np.int64))
    known = np.flatnonzero(time.notna().to_numpy())
    keys = pd.DataFrame({"g": codes[known], "t": time.to_numpy()[known]})
    order = keys.sort_values(["g", "t"], kind="stable").index.to_numpy()
    return known[order], codes[known[order]]


# -- the transformer ------------------------------------------------------------------------

class MarketFeatures(TransformerMixin, BaseEstimator):
    """Add indicator features to a table of prices (one or many tickers).

    Columns are found by name when not given (`date`, `ticker`, `adj_close`/`close`, `volume`,
    `high`, `low`). `indicators` limits the set to the named entries of INDICATORS (default
    all). transform returns the input columns followed by one column per indicator (named
    `prefix + indicator.name`), in the input row order; rows without a readable time get NaN
    features."""

    def __init__(self, time_column: str | None = None, ticker_column: str | None = None,
                 price_column: str | None = None, volume_column: str | None = None,
                 high_column: str | None = None, low_column: str | None = None,
                 close_column: str | None = None, indicators: tuple[str, ...] | None = None,
                 prefix: str = "") -> None:
        self.time_column = time_column
        self.ticker_column = ticker_column
        self.price_column = price_column
        self.volume_column = volume_column
        self.high_column = high_column
        self.low_column = low_column
        self.close_column = close_column
        self.indicators = indicators
        self.prefix = prefix

    def fit(self, X: pd.DataFrame, y: Any = None) -> MarketFeatures:
        frame = _as_frame(X)
        roles = market_roles(frame, time=self.time_column, ticker=self.ticker_column,
                             price=self.price_column, volume=self.volume_column,
                             high=self.high_column, low=self.low_column,
                             close=self.close_column)
        if roles["time"] is None:
            raise InvalidDataError("Market features need a time column: choose one (CLI: e.g. "
                                   "--time-column date).")
        if roles["price"] is None:
            raise InvalidDataError("Market features need a price column (e.g. adj_close or "
                                   "close): name it with price_column.")
        wanted = INDICATOR_NAMES if self.indicators is None else tuple(self.indicators)
        unknown = sorted(set(wanted) - set(INDICATOR_NAMES))
        if unknown:
            raise InvalidDataError(f"Unknown indicators: {', '.join(unknown)}. Known: "
                                   f"{', '.join(INDICATOR_NAMES)}.")
        self.roles_ = roles
        self.indicators_ = [i for i in INDICATORS if i.name in wanted
                            and all(roles.get(r) for r in i.needs)]
        self.skipped_ = {i.name: "needs a " + " and ".join(r for r in i.needs
                                                           if not roles.get(r)) + " column"
                         for i in INDICATORS if i.name in wanted and i not in self.indicators_}
        self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        self.n_features_in_ = frame.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        frame = _as_frame(X)
        features = self.compute(frame)
        return pd.concat([frame.reset_index(drop=True), features], axis=1).set_axis(
            frame.index, axis=0)

    def compute(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Only the indicator columns, in the input row order (index 0..n-1)."""
        roles = self.roles_
        n = len(frame)
        time = parse_time(frame[roles["time"]])
        ticker = frame[roles["ticker"]] if roles["ticker"] else None
        inputs = pd.DataFrame({"time": time.to_numpy()})
        for role in ("price", "volume", "high", "low", "close"):
            if roles[role]:
                inputs[role] = pd.to_numeric(frame[roles[role]], errors="coerce").to_numpy(
                    dtype="float64", na_value=np.nan)
        order, codes = per_ticker_order(time, ticker)
        out = np.full((n, len(self.indicators_)), np.nan)
        bounds = np.flatnonzero(np.diff(codes)) + 1
        for positions in np.split(order, bounds):
            if len(positions) == 0:
                continue
            g = inputs.iloc[positions].reset_index(drop=True)
            for j, ind in enumerate(self.indicators_):
                values = COMPUTATIONS[ind.compute](g, **ind.params)
                out[positions, j] = values.to_numpy(dtype="float64", na_value=np.nan)
        out[~np.isfinite(out)] = np.nan
        return pd.DataFrame(out, columns=self.get_feature_names_out())

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([self.prefix + i.name for i in self.indicators_], dtype=object)


def _as_frame(X: Any) -> pd.DataFrame:
    if not isinstance(X, pd.DataFrame):
        raise InvalidDataError("Market features need a table with named columns.")
    return X


def add_market_features(frame: pd.DataFrame, **params: Any) -> tuple[pd.DataFrame, list[str]]:
    """The table with indicator columns appended, and notes for the user (skipped
    indicators, warm-up rows whose long-window features are empty)."""
    transformer = MarketFeatures(**params).fit(frame)
    out = transformer.transform(frame)
    notes = [f"Indicator {name!r} was skipped: it {why}."
             for name, why in transformer.skipped_.items()]
    names = list(transformer.get_feature_names_out())
    warm = int(out[names].isna().any(axis=1).sum()) if names else 0
    if warm:
        notes.append(f"{warm} rows are in an indicator's warm-up (not enough earlier rows of "
                     "their ticker yet) and have some empty features; models impute them.")
    return out, notes


def asof_join(frame: pd.DataFrame, table: pd.DataFrame, *, time_column: str,
              table_time_column: str, available_after: str | pd.Timedelta = "0D",
              columns: list[str] | None = None, prefix: str = "") -> pd.DataFrame:
    """Attach to each row the latest row of `table` (e.g. quarterly macro data) that was
    *published* at or before the row's time: a table row dated `d` counts as known from
    `d + available_after` (GDP for a quarter appears about a month after it ends, so joining on
    the quarter's date alone would look ahead). Input row order is kept."""
    lag = pd.Timedelta(available_after)
    cols = columns or [c for c in table.columns if c != table_time_column]
    right = table[[table_time_column, *cols]].copy()
    right["_known_from"] = parse_time(right[table_time_column]) + lag
    right = right.dropna(subset=["_known_from"]).sort_values("_known_from", kind="stable")
    right = right.drop(columns=[table_time_column]).rename(columns={c: prefix + c for c in cols})
    left = pd.DataFrame({"_t": parse_time(frame[time_column]).to_numpy(),
                         "_pos": np.arange(len(frame))})
    known = left.dropna(subset=["_t"]).sort_values("_t", kind="stable")
    merged = pd.merge_asof(known, right, left_on="_t", right_on="_known_from",
                           direction="backward", allow_exact_matches=True)
    merged = merged.set_index("_pos").reindex(np.arange(len(frame)))
    joined = merged[[prefix + c for c in cols]].set_axis(frame.index, axis=0)
    return pd.concat([frame, joined], axis=1)


__all__ = ["INDICATORS", "INDICATOR_NAMES", "Indicator", "MarketFeatures",
           "add_market_features", "asof_join", "market_roles"]
