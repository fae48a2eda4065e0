"""Validation splits: stratified k-fold by default, time-ordered when a time column is given,
a single holdout for large tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.model_selection import KFold, StratifiedKFold, TimeSeriesSplit, train_test_split

HOLDOUT_ROWS = 50_000  # above this, one 80/20 holdout is worth more than k fits
DEFAULT_FOLDS = 5


def make_splits(y: pd.Series, task: str, *, seed: int = 0, folds: int = DEFAULT_FOLDS,
                time_order: pd.Series | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train_idx, valid_idx) pairs by position; never shuffles when time order is given."""
    n = len(y)
    index = np.arange(n)
    if time_order is not None:
        order = np.argsort(time_order.to_numpy(), kind="stable")
        splitter = TimeSeriesSplit(n_splits=folds)
        return [(order[tr], order[va]) for tr, va in splitter.split(order)]
    classification = task != "regression"
    if n > HOLDOUT_ROWS:
        strat = y if classification else None
        tr, va = train_test_split(index, test_size=0.2, random_state=seed, stratify=strat)
        return [(np.sort(tr), np.sort(va))]
    if classification:
        smallest = int(y.value_counts().min())
        k = max(2, min(folds, smallest))
        return list(StratifiedKFold(k, shuffle=True, random_state=seed).split(index, y))
    return list(KFold(folds, shuffle=True, random_state=seed).split(index))
