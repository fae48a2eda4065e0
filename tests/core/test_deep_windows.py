"""The sequence models' windows never look ahead (core/automl/deep/windows.py): for any table of
tickers and times (duplicates, gaps, unreadable times, any row order), every row in a row's
window is of the same ticker and strictly earlier, oldest first, and the window holds the most
recent such rows. No torch needed: windows are index arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from core.automl.deep.windows import PAD, past_rows

rows = st.lists(st.tuples(st.sampled_from(["A", "B", "C"]),
                          st.one_of(st.none(), st.integers(0, 30))), min_size=0, max_size=60)


def _table(data: list[tuple[str, int | None]]) -> tuple[pd.Series, pd.Series]:
    ticker = pd.Series([k for k, _ in data], dtype=object)
    time = pd.Series([pd.NaT if d is None else pd.Timestamp("2024-01-01") + pd.Timedelta(days=d)
                      for _, d in data], dtype="datetime64[ns]")
    return time, ticker


@settings(max_examples=100, deadline=None)
@given(data=rows, size=st.integers(1, 6))
def test_no_window_contains_a_row_at_or_after_the_row_it_predicts(
        data: list[tuple[str, int | None]], size: int) -> None:
    time, ticker = _table(data)
    windows = past_rows(time, ticker, size)
    assert windows.shape == (len(data), size)
    t = time.to_numpy()
    for i, window in enumerate(windows):
        members = window[window != PAD]
        if pd.isna(t[i]):
            assert len(members) == 0, "a row without a time gets no window"
            continue
        assert (window[:size - len(members)] == PAD).all(), "padding is on the left only"
        for j in members:
            assert ticker[j] == ticker[i], "a window holds only the row's own ticker"
            assert t[j] < t[i], f"row {j} at {t[j]} is not before row {i} at {t[i]}"
        assert (np.diff(t[members].astype("int64")) >= 0).all(), "oldest first"
        earlier = [j for j in range(len(data)) if ticker[j] == ticker[i] and not pd.isna(t[j])
                   and t[j] < t[i]]
        assert len(members) == min(size, len(earlier)), "the window is as full as it can be"
        if earlier and len(members):
            newest = max(t[j] for j in earlier)
            assert t[members[-1]] == newest, "the most recent earlier row is last"


@settings(max_examples=50, deadline=None)
@given(data=rows)
def test_windows_do_not_depend_on_the_row_order(data: list[tuple[str, int | None]]) -> None:
    """Shuffling the rows moves the windows with them: the same earlier rows, by time."""
    time, ticker = _table(data)
    perm = np.random.default_rng(len(data)).permutation(len(data))
    base = past_rows(time, ticker, 4)
    shuffled = past_rows(time[perm].reset_index(drop=True), ticker[perm].reset_index(drop=True),
                         4)
    t = time.to_numpy()
    for new, old in enumerate(perm):
        a = [t[j] for j in base[old] if j != PAD]
        b = [t[perm[j]] for j in shuffled[new] if j != PAD]
        assert a == b


def test_one_series_without_a_ticker() -> None:
    time = pd.Series(pd.date_range("2024-01-01", periods=5, freq="D"))[::-1].reset_index(
        drop=True)  # newest first
    windows = past_rows(time, None, 2)
    assert windows.tolist() == [[2, 1], [3, 2], [4, 3], [PAD, 4], [PAD, PAD]]
