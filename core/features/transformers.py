"""Small scikit-learn transformers of our own. They live in `core.` so the artifact loader
can trust them by name (see core/registry/artifacts.py).

Both take text and dates, so they validate their input the way scikit-learn's own
transformers do (2-D, not sparse, not complex, not empty at fit, as many columns as at fit)
without converting it to numbers; tests/core/test_estimator_checks.py runs scikit-learn's
estimator checks on them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted

DATETIME_PARTS = ("year", "month", "day", "day_of_week", "hour")


MISSING_LABEL = "__missing__"


def _checked_frame(estimator: BaseEstimator, X: Any, *, reset: bool) -> pd.DataFrame:
    """X as a frame (a DataFrame keeps its column types); `reset` records the column count
    (fit), otherwise a different count is refused with scikit-learn's own message."""
    values = check_array(X, dtype=None, accept_sparse=False, ensure_all_finite=False,
                         ensure_min_samples=1 if reset else 0)
    frame = X if isinstance(X, pd.DataFrame) else pd.DataFrame(values)
    if reset:
        estimator.n_features_in_ = frame.shape[1]
    elif frame.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X has {frame.shape[1]} features, but {type(estimator).__name__} "
                         f"is expecting {estimator.n_features_in_} features as input.")
    return frame


class CategoricalCleaner(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Turn any categorical column into strings, with missing values as one category, so that
    numbers-as-labels and text labels encode the same way at fit and predict time."""

    def fit(self, X, y=None):
        frame = _checked_frame(self, X, reset=True)
        if isinstance(X, pd.DataFrame):
            self.feature_names_in_ = np.asarray([str(c) for c in frame.columns], dtype=object)
        return self

    def transform(self, X):
        check_is_fitted(self)
        frame = _checked_frame(self, X, reset=False).astype(object)
        return frame.where(frame.notna(), MISSING_LABEL).astype(str).to_numpy(dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.categorical = True
        tags.input_tags.allow_nan = True  # missing values become the MISSING_LABEL category
        tags.transformer_tags.preserves_dtype = []  # always text
        return tags


class DatetimeParts(TransformerMixin, BaseEstimator):
    """Split date/time columns into numeric parts (year, month, day, weekday, hour)."""

    def fit(self, X, y=None):
        frame = _checked_frame(self, X, reset=True)
        self.columns_ = [str(c) for c in frame.columns]
        return self

    def transform(self, X):
        check_is_fitted(self)
        frame = _checked_frame(self, X, reset=False)
        out = []
        for col in frame.columns:
            ts = pd.to_datetime(frame[col], errors="coerce", format="mixed", utc=True)
            for part in DATETIME_PARTS:
                out.append(getattr(ts.dt, part).astype("float64").to_numpy())
        return np.column_stack(out) if out else np.empty((len(frame), 0))

    def get_feature_names_out(self, input_features=None):
        cols = self.columns_ if input_features is None else list(input_features)
        return np.asarray([f"{c}__{p}" for c in cols for p in DATETIME_PARTS], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # dates arrive as text
        tags.input_tags.allow_nan = True  # an unreadable or missing date gives NaN parts
        return tags
