"""Windows of earlier rows per ticker, without lookahead.

The window of a row holds the `size` most recent rows of the same ticker whose time is
strictly before the row's time, oldest first, padded on the left. A row never sees itself, a
row of the same timestamp (a duplicate) or anything later, and never another ticker's rows;
rows without a readable time neither get a window nor appear in one. The ordering is the market
features' (`core.features.finance.per_ticker_order`: a stable sort by ticker, then time), so a
sequence model and the indicators agree on what "earlier" means.
tests/core/test_deep_windows.py checks it with hypothesis.

No torch here: the windows are index arrays, usable and testable without the extra.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.features.finance import per_ticker_order

PAD = -1


def past_rows(time: pd.Series, ticker: pd.Series | None, size: int) -> np.ndarray:
    """An int64 array [n, size]: row positions of each row's window, oldest first, PAD where
    the ticker has fewer earlier rows."""
    n = len(time)
    out = np.full((n, size), PAD, dtype=np.int64)
    if n == 0 or size == 0:
        return out
    order, codes = per_ticker_order(time.reset_index(drop=True),
                                    None if ticker is None else ticker.reset_index(drop=True))
    stamps = time.to_numpy(dtype="datetime64[ns]")
    for positions in np.split(order, np.flatnonzero(np.diff(codes)) + 1):
        if len(positions) == 0:
            continue
        t = stamps[positions]  # sorted ascending within the ticker
        earlier = np.searchsorted(t, t, side="left")  # rows strictly before each row's time
        for k in range(1, size + 1):
            back = earlier - k
            ok = back >= 0
            out[positions[ok], size - k] = positions[back[ok]]
    return out


__all__ = ["PAD", "past_rows"]
