"""The search's memory: compact training frames and the per-trial memory cap (issue 17).

- `compact(X, schema)`: numeric feature columns as float32 where that keeps every distinct
  value distinct (scikit-learn's trees, XGBoost and LightGBM's binning work on float32 anyway;
  a column whose values float32 would merge, such as large integer identifiers, stays
  float64), and label columns as pandas categories (1-2 byte codes instead of an 8-byte
  object pointer per row; the preprocessor's CategoricalCleaner reads them as before). Every
  fold's row selection copies the frame, so this halves those copies too.
- `trial_cap_bytes(X)`: how much one trial may grow the process (the watchdog of
  core.automl.watchdog stops it over that and the trial is recorded as failed with the
  figures): the WORKBENCH_TRIAL_MEMORY_MB setting, or automatically
  min(max(1 GB, 40 x the training frame), 3/4 of the memory still available).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.automl.watchdog import MB, available_bytes
from core.features.kinds import scored_as_number
from core.features.schema import LABEL_KINDS
from core.store.shapes import SchemaColumn

TRIAL_MEMORY_FLOOR_MB = 1024       # the automatic cap is never below 1 GB of growth ...
TRIAL_MEMORY_PER_FRAME = 40        # ... else 40x the training frame (one-hot, copies, trees)
TRIAL_MEMORY_AVAILABLE_SHARE = 0.75  # ... and never more than 3/4 of the free memory
TRIAL_MEMORY_MIN_MB = 256          # a nearly full machine still lets a trial grow by this


def compact(X: pd.DataFrame, schema: list[SchemaColumn]) -> pd.DataFrame:
    """`X` on compact dtypes (a new frame; columns that do not shrink are shared)."""
    out = {}
    for col in schema:
        name = col["name"]
        s = X[name]
        if scored_as_number(col) and s.dtype == np.float64:
            s = _float32(s)
        elif col["kind"] in LABEL_KINDS and s.dtype == object:
            s = _category(s)
        out[name] = s
    return pd.DataFrame(out, index=X.index)


def _float32(s: pd.Series) -> pd.Series:
    small = s.astype(np.float32)
    values = s.to_numpy()
    finite = np.isfinite(values)
    if not finite.any():
        return small
    biggest = np.abs(values[finite]).max()
    if biggest > np.finfo(np.float32).max:
        return s
    if biggest <= 2**24 and np.array_equal(values[finite], np.round(values[finite])):
        return small  # whole numbers float32 holds exactly: no hashing needed
    if small.nunique(dropna=True) != s.nunique(dropna=True):  # float32 would merge values
        return s
    return small


def _category(s: pd.Series) -> pd.Series:
    """Categories when the labels repeat (codes + one copy of each label); unique text-like
    labels would only add the codes. Mixed types stay as they are (a category's labels are
    compared by value: 1 and "1" must not become one)."""
    n_unique = s.nunique(dropna=True)
    if n_unique > max(len(s) // 2, 1):
        return s
    kinds = {type(v) for v in s.dropna().unique()[:1000]}
    if len(kinds) > 1:
        return s
    return s.astype("category")


def frame_bytes(X: pd.DataFrame) -> int:
    return int(X.memory_usage(index=False, deep=False).sum())


def trial_cap_bytes(X: pd.DataFrame, setting_mb: float | None = None) -> int | None:
    """Bytes one trial may grow the process by (None: no cap). `setting_mb` defaults to the
    WORKBENCH_TRIAL_MEMORY_MB setting: unset = automatic, 0 = no cap."""
    if setting_mb is None:
        from core.settings import get_settings

        setting_mb = get_settings().trial_memory_mb
    if setting_mb is not None:
        return int(setting_mb * MB) if setting_mb > 0 else None
    wanted = max(TRIAL_MEMORY_FLOOR_MB * MB, TRIAL_MEMORY_PER_FRAME * frame_bytes(X))
    free = available_bytes()
    if free is None:
        return wanted
    return int(min(wanted, max(TRIAL_MEMORY_AVAILABLE_SHARE * free, TRIAL_MEMORY_MIN_MB * MB)))
