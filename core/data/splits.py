"""Validation splits: stratified k-fold by default, walk-forward when rows are ordered in time,
a single holdout for large tables.

Walk-forward (expanding window) works on *timestamps*, not rows: every row of one timestamp
(several tickers on one day) lands on the same side of a split, the training window always ends
`gap` timestamps before its validation block begins (an embargo, so targets that look `h`
periods ahead cannot overlap the validation period), and the most recent block can be kept
aside as a holdout that no fold ever sees. Nothing is shuffled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, train_test_split

from core.enums import Task
from core.errors import InvalidDataError

HOLDOUT_ROWS = 50_000  # above this, one 80/20 holdout is worth more than k fits
DEFAULT_FOLDS = 5
DEFAULT_GAP = 1        # timestamps dropped between a training window and its validation block
MIN_BLOCK = 2          # fewest timestamps per validation block


@dataclass(frozen=True)
class WalkForward:
    """Walk-forward folds by row position, plus the rows kept aside as the final holdout.

    `splits[i] = (train_idx, valid_idx)`; every training row is strictly earlier than every
    validation row of its fold, with at least `gap` distinct timestamps between them.
    `holdout` rows are the most recent timestamps and belong to no fold. `unordered` are rows
    without a usable timestamp: they are never validated on and never trained on."""

    splits: list[tuple[np.ndarray, np.ndarray]]
    holdout: np.ndarray
    gap: int
    unordered: np.ndarray
    boundaries: list[dict[str, object]]

    def describe(self) -> str:
        parts = [f"walk-forward validation: {len(self.splits)} expanding-window folds in time "
                 f"order, a gap of {self.gap} timestamp(s) between training and validation"]
        if len(self.holdout):
            parts.append(f"the most recent {len(self.holdout)} rows kept aside as a holdout")
        if len(self.unordered):
            parts.append(f"{len(self.unordered)} rows without a readable time left out")
        return "; ".join(parts) + "."


def walk_forward(time_order: pd.Series | np.ndarray, *, folds: int = DEFAULT_FOLDS,
                 gap: int = DEFAULT_GAP, holdout: float | int = 0.0) -> WalkForward:
    """Expanding-window folds over the distinct timestamps of `time_order`.

    The distinct timestamps are cut into `folds + 1` equal blocks after the holdout is taken
    from the end: the first block only ever trains; block i validates fold i-1, trained on
    every timestamp before it except the last `gap`. `holdout` is a share (< 1) or a count of
    the most recent distinct timestamps."""
    if folds < 1:
        raise ValueError("folds must be at least 1")
    if gap < 0:
        raise ValueError("gap must be zero or more")
    times = pd.Series(pd.to_datetime(pd.Series(time_order), errors="coerce", format="mixed",
                                     utc=True).dt.tz_localize(None)
                      if not _is_numeric(time_order) else pd.Series(time_order))
    values = times.to_numpy()
    known = ~pd.isna(values)
    unordered = np.flatnonzero(~known)
    distinct = np.unique(values[known])
    n_t = len(distinct)
    n_hold = int(round(holdout * n_t)) if isinstance(holdout, float) and holdout < 1 \
        else int(holdout)
    usable = n_t - n_hold
    block = usable // (folds + 1)
    if block < MIN_BLOCK or block <= gap:
        raise InvalidDataError(
            f"Too few distinct timestamps ({n_t}) for {folds} walk-forward folds with a gap of "
            f"{gap} and a holdout of {n_hold}: each validation block needs at least {MIN_BLOCK} "
            "timestamps and more than the gap. Use fewer folds, a smaller gap, or more "
            "history.")
    # rank of each row's timestamp among the distinct ones (-1 for unknown)
    rank = np.full(len(values), -1, dtype=np.int64)
    rank[known] = np.searchsorted(distinct, values[known])
    splits, bounds = [], []
    for i in range(folds):
        start = usable - (folds - i) * block
        stop = start + block
        train = np.flatnonzero(known & (rank < start - gap))
        valid = np.flatnonzero(known & (rank >= start) & (rank < stop))
        if len(train) == 0:
            continue
        splits.append((train, valid))
        bounds.append({"fold": len(splits), "train_end": _iso(distinct[start - gap - 1]),
                       "valid_start": _iso(distinct[start]),
                       "valid_end": _iso(distinct[stop - 1]),
                       "train_rows": len(train), "valid_rows": len(valid)})
    hold = np.flatnonzero(known & (rank >= usable))
    return WalkForward(splits=splits, holdout=hold, gap=gap, unordered=unordered,
                       boundaries=bounds)


def _is_numeric(values: pd.Series | np.ndarray) -> bool:
    dtype = getattr(values, "dtype", None)
    return dtype is not None and np.issubdtype(dtype, np.number)


def _iso(value: object) -> str:
    ts = pd.Timestamp(value) if not isinstance(value, int | float | np.number) else None
    return ts.isoformat() if ts is not None else str(value)


def make_splits(y: pd.Series, task: Task | str, *, seed: int = 0, folds: int = DEFAULT_FOLDS,
                time_order: pd.Series | None = None, gap: int = DEFAULT_GAP,
                holdout: float | int = 0.0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, valid_idx) pairs by position; never shuffles when time order is given
    (walk-forward over distinct timestamps, see `walk_forward`)."""
    n = len(y)
    index = np.arange(n)
    if time_order is not None:
        return walk_forward(time_order, folds=folds, gap=gap, holdout=holdout).splits
    classification = Task(task).is_classification
    if n > HOLDOUT_ROWS:
        strat = y if classification else None
        tr, va = train_test_split(index, test_size=0.2, random_state=seed, stratify=strat)
        return [(np.sort(tr), np.sort(va))]
    if classification:
        smallest = int(y.value_counts().min())
        k = max(2, min(folds, smallest))
        return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(index, y))
    return list(KFold(folds, shuffle=True, random_state=seed).split(index))
