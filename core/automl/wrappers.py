"""Estimator wrappers of our own (trusted by the artifact loader because they live in core)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted, validate_data


class LabelEncodedClassifier(ClassifierMixin, BaseEstimator):
    """Fit any classifier on codes 0..K-1 and answer with the original labels.

    XGBoost insists on integer codes; wrapping every classifier the same way keeps one code
    path and makes `classes_` the user's labels (strings, ints or booleans) everywhere."""

    def __init__(self, estimator=None):
        self.estimator = estimator

    def fit(self, X, y, **fit_params):
        # records n_features_in_ (and column names) without converting X: the inner
        # estimator validates it, and may accept what a plain array check would refuse
        validate_data(self, X, skip_check_array=True)
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        self.estimator_ = clone(self.estimator).fit(X, self.encoder_.transform(y), **fit_params)
        return self

    def predict_proba(self, X):
        check_is_fitted(self)
        return self.estimator_.predict_proba(X)

    def predict(self, X):
        check_is_fitted(self)
        if hasattr(self.estimator_, "predict_proba"):
            return self.classes_[np.argmax(self.predict_proba(X), axis=1)]
        return self.encoder_.inverse_transform(self.estimator_.predict(X).astype(int))

    def __sklearn_tags__(self):
        """The inputs the wrapped estimator takes (sparse matrices, missing values)."""
        tags = super().__sklearn_tags__()
        if self.estimator is not None:
            inner = get_tags(self.estimator).input_tags
            tags.input_tags.sparse = inner.sparse
            tags.input_tags.allow_nan = inner.allow_nan
        return tags
