"""Targets for market data: what happens to the price `horizon` periods after each row.

A row's target is built from its own ticker's row `horizon` periods later (periods are rows of
that ticker in time order, e.g. trading days). The last `horizon` rows of each ticker cannot
have a target; they are dropped and the count is said in the notes. The realised forward
return is returned beside the table, never inside it, so it cannot become a feature; the
backtest (core.automl.backtest) uses it to score a strategy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.errors import InvalidDataError
from core.features.finance import add_market_features, market_roles, parse_time, per_ticker_order

TARGET_KINDS: dict[str, str] = {
    "return": "the simple return from this row's price to the price {h} period(s) later",
    "log_return": "the log return from this row's price to the price {h} period(s) later",
    "direction": "'up' if the price {h} period(s) later is strictly higher than this row's, "
                 "else 'down'",
}
UP, DOWN = "up", "down"


@dataclass
class MarketTable:
    """A table ready for `search(frame, target, time_column=...)`."""

    frame: pd.DataFrame           # rows that have a target, in input order, index 0..n-1
    target: str
    forward_return: pd.Series     # realised simple return over the horizon, aligned with frame
    kind: str
    horizon: int
    time_column: str
    ticker_column: str | None
    price_column: str
    dropped: int = 0
    notes: list[str] = field(default_factory=list)


def forward_returns(frame: pd.DataFrame, *, price_column: str, time_column: str,
                    ticker_column: str | None = None, horizon: int = 1) -> pd.Series:
    """Per row, price `horizon` rows later (same ticker, time order) / price - 1; NaN where
    there is no such row. Index: the input's."""
    if horizon < 1:
        raise InvalidDataError(f"The horizon must be 1 period or more, not {horizon}.")
    time = parse_time(frame[time_column])
    price = pd.to_numeric(frame[price_column], errors="coerce").to_numpy(dtype="float64",
                                                                         na_value=np.nan)
    ticker = frame[ticker_column] if ticker_column else None
    order, codes = per_ticker_order(time, ticker)
    out = np.full(len(frame), np.nan)
    p = price[order]
    later = np.full(len(order), np.nan)
    if len(order) > horizon:
        later[:-horizon] = p[horizon:]
        same = np.zeros(len(order), dtype=bool)
        same[:-horizon] = codes[horizon:] == codes[:-horizon]
        later[~same] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = later / np.where(p > 0, p, np.nan) - 1
    out[order] = ret
    return pd.Series(out, index=frame.index, name=f"forward_return_{horizon}")


def build_target(frame: pd.DataFrame, *, kind: str = "direction", horizon: int = 1,
                 price_column: str | None = None, time_column: str | None = None,
                 ticker_column: str | None = None, name: str | None = None) -> MarketTable:
    """Add the target column and drop the rows that cannot have one (said in the notes)."""
    if kind not in TARGET_KINDS:
        raise InvalidDataError(f"Unknown target kind {kind!r}: use "
                               f"{', '.join(TARGET_KINDS)}.")
    roles = market_roles(frame, time=time_column, ticker=ticker_column, price=price_column)
    if roles["time"] is None or roles["price"] is None:
        raise InvalidDataError("A market target needs a time column and a price column: choose "
                               "the time column and the price column as the target (CLI: e.g. "
                               "--time-column date --target adj_close).")
    time_col, price_col, ticker_col = roles["time"], roles["price"], roles["ticker"]
    fwd = forward_returns(frame, price_column=price_col, time_column=time_col,
                          ticker_column=ticker_col, horizon=horizon)
    target = name or f"{price_col}_{kind}_{horizon}"
    if target in frame.columns:
        raise InvalidDataError(f"The table already has a column {target!r}: choose another "
                               "target name.")
    if kind == "return":
        values: Any = fwd
    elif kind == "log_return":
        values = np.log1p(fwd)
    else:
        values = pd.Series(np.where(fwd > 0, UP, DOWN), index=frame.index).where(fwd.notna())
    keep = fwd.notna().to_numpy()
    dropped = int((~keep).sum())
    out = frame.assign(**{target: values}).loc[keep].reset_index(drop=True)
    notes = [f"Target {target!r}: " + TARGET_KINDS[kind].format(h=horizon)
             + (f", per {ticker_col!r}" if ticker_col else "") + "."]
    if dropped:
        notes.append(f"{dropped} rows were dropped because they cannot have a target: the last "
                     f"{horizon} row(s) of each "
                     + (f"{ticker_col!r}" if ticker_col else "series")
                     + " (no price that far ahead yet) or rows without a price or time.")
    if kind == "direction" and keep.any():
        share = float((values[keep] == UP).mean())
        notes.append(f"{share:.1%} of the remaining rows are 'up'.")
    return MarketTable(frame=out, target=target,
                       forward_return=fwd.loc[keep].reset_index(drop=True), kind=kind,
                       horizon=horizon, time_column=time_col, ticker_column=ticker_col,
                       price_column=price_col, dropped=dropped, notes=notes)


def market_table(frame: pd.DataFrame, *, kind: str = "direction", horizon: int = 1,
                 price_column: str | None = None, time_column: str | None = None,
                 ticker_column: str | None = None, indicators: tuple[str, ...] | None = None,
                 features: bool = True, name: str | None = None) -> MarketTable:
    """Indicator features (core.features.finance) and the target in one step: features are
    computed on every row first (each from its own past), then the rows that cannot have a
    target are dropped."""
    notes: list[str] = []
    if features:
        frame, notes = add_market_features(frame, time_column=time_column,
                                           ticker_column=ticker_column,
                                           price_column=price_column, indicators=indicators)
    table = build_target(frame, kind=kind, horizon=horizon, price_column=price_column,
                         time_column=time_column, ticker_column=ticker_column, name=name)
    table.notes = table.notes + notes
    return table


__all__ = ["TARGET_KINDS", "MarketTable", "build_target", "forward_returns", "market_table"]
