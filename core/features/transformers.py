"""Small scikit-learn transformers of our own. They live in `core.` so the artifact loader
can trust them by name (see core/registry/artifacts.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

DATETIME_PARTS = ("year", "month", "day", "day_of_week", "hour")


MISSING_LABEL = "__missing__"


class CategoricalCleaner(TransformerMixin, BaseEstimator):
    """Turn any categorical column into strings, with missing values as one category, so that
    numbers-as-labels and text labels encode the same way at fit and predict time."""

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X):
        frame = pd.DataFrame(X).astype(object)
        return frame.where(frame.notna(), MISSING_LABEL).astype(str).to_numpy(dtype=object)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(input_features if input_features is not None else [], dtype=object)


class DatetimeParts(TransformerMixin, BaseEstimator):
    """Split date/time columns into numeric parts (year, month, day, weekday, hour)."""

    def fit(self, X, y=None):
        frame = pd.DataFrame(X)
        self.columns_ = [str(c) for c in frame.columns]
        self.n_features_in_ = frame.shape[1]
        return self

    def transform(self, X):
        frame = pd.DataFrame(X)
        out = []
        for col in frame.columns:
            ts = pd.to_datetime(frame[col], errors="coerce", format="mixed", utc=True)
            for part in DATETIME_PARTS:
                out.append(getattr(ts.dt, part).astype("float64").to_numpy())
        return np.column_stack(out) if out else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features=None):
        cols = self.columns_ if input_features is None else list(input_features)
        return np.asarray([f"{c}__{p}" for c in cols for p in DATETIME_PARTS], dtype=object)
