"""Checks before a search starts: enough rows to validate, a width the budget can carry,
no feature that is the target under another name.

They run where every training request is prepared (core.usecases.training), so a refusal comes
before a job is queued and a leak is dropped from the data the search sees, with a note that
ends up on the job, the leaderboard and the registered version.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from core.automl.train import TrainingData
from core.data.profile import check_target
from core.errors import InvalidDataError
from core.features.kinds import holds_numbers
from core.features.preprocess import used_columns
from core.store.shapes import SchemaColumn

# 5-fold cross-validation on 30 rows validates 6 rows per fold: already a coarse score (one
# row moves accuracy by 17 points), and below that the leaderboard ranks noise. A model
# registered from fewer rows would look validated without being so.
MIN_ROWS = 30
# Every feature column costs time before and after the search: profiling, type coercion,
# per-column encoding in each fold and permutation importance at the end. Measured on the
# 2-core reference machine (bench/wide.py), a search keeps its budget up to about this many
# feature columns per second of budget; wider tables are refused before anything starts,
# with the budget that would do.
COLUMNS_PER_BUDGET_SECOND = 10
MIN_WIDTH_LIMIT = 100
LEAK_CORRELATION = 0.9999      # |Pearson r| of a numeric feature with a numeric target
LEAK_SAMPLE_ROWS = 50_000      # leak checks look at a sample of very large tables
# A 1:1 mapping is only evidence of a leak when values repeat: on a column of unique values
# (an id) every mapping is 1:1.
LEAK_MAX_DISTINCT_SHARE = 0.5
LEAK_MIN_PRESENT = 0.9         # a mapping seen on fewer filled-in rows is not evidence


def preflight(data: TrainingData) -> TrainingData:
    """Refuse data too small to validate; drop target leaks with a note. Returns the data to
    search (a copy when columns were dropped)."""
    check_min_rows(data)
    leaks = find_target_leaks(data.X, data.y)
    if not leaks:
        return data
    return drop_leaks(data, leaks)


def max_columns(budget: float) -> int:
    """The widest table (feature columns) a search of `budget` seconds can keep its budget
    on."""
    return max(MIN_WIDTH_LIMIT, int(COLUMNS_PER_BUDGET_SECOND * budget))


def check_shape(frame: pd.DataFrame, target: str, budget: float) -> None:
    """Refuse, before anything is profiled or trained, a table with too few rows to validate
    or too many columns for the budget."""
    if target in frame.columns:
        y = check_target(frame, target)  # empty or constant: its own message first
        _check_rows(int(y.notna().sum()))
    check_width(frame.shape[1] - 1, budget)


def check_width(n_features: int, budget: float) -> None:
    limit = max_columns(budget)
    if n_features <= limit:
        return
    needed = int(np.ceil(n_features / COLUMNS_PER_BUDGET_SECOND))
    raise InvalidDataError(
        f"The table has {n_features:,} feature columns; a search with a budget of {budget:g} "
        f"seconds handles at most {limit:,} ({COLUMNS_PER_BUDGET_SECOND} per second of "
        "budget), because every column is profiled and encoded in every fold of every "
        f"trial. Raise the budget to at least {needed:,} seconds, or keep the "
        f"{limit:,} most relevant columns and upload the table again.")


def check_min_rows(data: TrainingData) -> None:
    _check_rows(len(data.y))


def _check_rows(n: int) -> None:
    if n < MIN_ROWS:
        raise InvalidDataError(
            f"The table has {n} rows with a target value; training needs at least {MIN_ROWS} "
            f"so that cross-validation has enough rows to score (with {n}, each of the folds "
            "would validate on a handful of rows and the leaderboard would rank noise). Add "
            "rows, or fill in the empty target values.")


def find_target_leaks(X: pd.DataFrame, y: pd.Series) -> dict[str, str]:
    """Features that reproduce the target: identical values, a 1:1 relabelling of its values,
    or (numeric) |correlation| above LEAK_CORRELATION. Returns {column: why}."""
    if len(X) > LEAK_SAMPLE_ROWS:
        rows = X.sample(LEAK_SAMPLE_ROWS, random_state=0).index
        X, y = X.loc[rows], y.loc[rows]
    leaks: dict[str, str] = {}
    y_codes, y_values = pd.factorize(y, use_na_sentinel=False)
    n, n_y = len(y), len(y_values)
    y_text = y.astype(str).to_numpy()
    for col in X.columns:
        x = X[col]
        if x.isna().all():
            continue
        if np.array_equal(x.astype(str).to_numpy(), y_text):
            leaks[str(col)] = "its values are identical to the target's"
            continue
        if n_y <= LEAK_MAX_DISTINCT_SHARE * n and _one_to_one(x, y_codes):
            leaks[str(col)] = ("each of its values stands for exactly one target value "
                               "(a relabelled copy of the target)")
    for col, r in _correlations(X.drop(columns=list(leaks)), y).items():
        if abs(r) > LEAK_CORRELATION:
            leaks[col] = f"its correlation with the target is {r:.5f}"
    return leaks


def _one_to_one(x: pd.Series, y_codes: np.ndarray) -> bool:
    """Values of x and of the target pair up one to one (on the rows where x is filled in,
    which must be nearly all of them)."""
    present = x.notna().to_numpy()
    if present.mean() < LEAK_MIN_PRESENT:
        return False
    x_codes, x_values = pd.factorize(x[present])
    yc = y_codes[present]
    n_y = len(np.unique(yc))
    if n_y < 2 or len(x_values) != n_y:
        return False
    return len(np.unique(x_codes.astype(np.int64) * (int(yc.max()) + 1) + yc)) == n_y


def _correlations(X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    if not holds_numbers(y):
        return {}
    numeric = [c for c in X.columns if holds_numbers(X[c]) and X[c].nunique() > 1]
    if not numeric or y.nunique() < 2:
        return {}
    with np.errstate(all="ignore"):
        r = X[numeric].astype("float64").corrwith(y.astype("float64"))
    return {str(c): float(v) for c, v in r.items() if np.isfinite(v)}


def drop_leaks(data: TrainingData, leaks: dict[str, str]) -> TrainingData:
    target = str(data.y.name)
    notes = [f"Dropped column {col!r}: {why} (target {target!r}), so a model would score "
             "perfectly here and fail on new data where the target is not known yet. If it "
             "is the column you meant to predict, choose it as the target."
             for col, why in leaks.items()]
    keep = [c for c in data.X.columns if str(c) not in leaks]
    schema: list[SchemaColumn] = [c for c in data.schema if c["name"] not in leaks]
    if not any(used_columns(schema)[0].values()):
        raise InvalidDataError(
            f"Every usable feature column reproduces the target {target!r}: "
            + ", ".join(f"{c!r} ({why})" for c, why in leaks.items())
            + ". Add columns that are known before the target is.")
    dropped = {**data.dropped, **{c: f"a target leak: {why}" for c, why in leaks.items()}}
    return dataclasses.replace(data, X=data.X[keep], schema=schema, dropped=dropped,
                               notes=[*data.notes, *notes])
