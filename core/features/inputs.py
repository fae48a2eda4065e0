"""Rows sent for prediction → the frame a version's pipeline scores. The one function for the
CLI's `predict` (core.predict) and the REST routes (core.deploy.cache), so a model gives the
same answer whichever way it is asked.

A market model (`evaluation["market"]` on its version) was trained on indicator features built
from price history, so callers send raw price rows (time, ticker, OHLCV as in training) and the
indicators are rebuilt here, each row from its own ticker's rows at or before its time *in the
same batch*. Indicator values a caller sends are ignored: they are always rebuilt."""

from __future__ import annotations

from typing import Any

import pandas as pd

from core.features.finance import INDICATOR_NAMES, add_market_features
from core.features.schema import align_to_schema, check_columns
from core.store import ModelVersion


def market_spec(mv: ModelVersion) -> dict[str, Any] | None:
    """The market settings stored with a version (time, ticker and price columns), or None."""
    return (mv.evaluation or {}).get("market") or None


def sent_columns(mv: ModelVersion) -> list[str]:
    """The columns a caller sends: the input schema, minus the indicators a market model
    rebuilds itself."""
    names = [c["name"] for c in mv.input_schema or []]
    if market_spec(mv) is None:
        return names
    return [n for n in names if n not in INDICATOR_NAMES]


def model_input(mv: ModelVersion, frame: pd.DataFrame) -> pd.DataFrame:
    """The version's input frame from the caller's rows, in their order: market indicators
    rebuilt first, then aligned to the schema (extra columns ignored, types coerced, missing
    columns refused by name)."""
    if market_spec(mv):
        check_columns(
            sent_columns(mv), frame.columns, known=[c["name"] for c in mv.input_schema or []],
            lead="This market model rebuilds its indicators from raw price rows; columns it "
                 "needs are missing from the input",
            fix="Send the same price columns as in training, with each ticker's recent "
                "history (at least 61 rows for every indicator to be defined).")
    return align_to_schema(with_indicators(mv, frame), mv.input_schema)


def with_indicators(mv: ModelVersion, frame: pd.DataFrame, *, warmed_up: bool = False
                    ) -> pd.DataFrame:
    """The caller's rows plus a market model's indicators rebuilt from them (what its training
    data and drift reference hold); other models' rows, and rows lacking the price columns,
    as they are. `warmed_up` keeps only rows with every indicator defined (when there are
    any): drift must not read a short history's first rows as missing values."""
    market = market_spec(mv)
    if not market or any(c not in frame.columns for c in sent_columns(mv)):
        return frame
    frame = frame.drop(columns=[c for c in INDICATOR_NAMES if c in frame.columns])
    frame, _ = add_market_features(frame, time_column=market["time_column"],
                                   ticker_column=market["ticker_column"],
                                   price_column=market["price_column"])
    if warmed_up:
        complete = frame[[c for c in INDICATOR_NAMES if c in frame.columns]].notna().all(axis=1)
        if complete.any():
            frame = frame[complete]
    return frame


__all__ = ["market_spec", "model_input", "sent_columns", "with_indicators"]
