"""LightGBM and CatBoost as workbench estimators whose fitted state is plain data.

Why wrappers and not `lightgbm.LGBMClassifier` / `catboost.CatBoostClassifier` themselves:
the artifact loader (core/registry/trust.py) builds only exact, trusted types that hold data.
Here the fitted booster is kept as the library's own model format, LightGBM's text model
(`model_`, a str) and CatBoost's binary .cbm (`model_`, bytes), and the live booster is
rebuilt from it on load (`__setstate__`: `lightgbm.Booster(model_str=...)`,
`CatBoost().load_model(blob=...)`). skops stores a str and bytes as data, so a saved
pipeline names only these classes and nothing callable; see docs/automl/lgbm-catboost.md.

Categories: the "native" preprocessing family (core/features/preprocess.py) puts the
ordinal-coded category columns first; `categorical_columns` (set from the schema by the
catalogue) says how many, and the booster treats them as categories (LightGBM's
`categorical_feature`, CatBoost's `cat_features`). Code -1 (missing, unseen) is LightGBM's
missing value and one more category for CatBoost.

Early stopping: on an internal validation split with a fixed seed (`random_state`), like
HistGradientBoosting's `early_stopping`, in every fold and in the final refit alike (the
fold's own validation rows score the trial, so they never choose its number of rounds).

Time: `max_time_s` (set by the search from what is left of the budget, as for the networks)
stops the boosting after that many seconds, keeping the trees so far, so one slow fit cannot
break the budget's promise.

Both libraries are imported on first fit or load, never by importing this module.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

MIN_VALID_ROWS = 10        # fewer held-out rows than this: no early stopping
FALLBACK_ROUNDS = 100      # rounds trained when the table is too small to hold rows out
SMALL_TABLE_ROWS = 5_000   # below it, 20 % of the rows are held out for early stopping; 10 % above


def validation_split(y: np.ndarray, classification: bool, seed: int
                     ) -> tuple[np.ndarray, np.ndarray] | None:
    """(train, valid) row indices for early stopping, stratified when every class can be on
    both sides; None when too few rows would be held out."""
    n = len(y)
    fraction = 0.2 if n < SMALL_TABLE_ROWS else 0.1
    if n * fraction < MIN_VALID_ROWS:
        return None
    stratify = None
    if classification:
        _, counts = np.unique(y, return_counts=True)
        stratify = y if counts.min() >= 2 and len(counts) <= n * fraction else None
    rows = np.arange(n)
    train, valid = train_test_split(rows, test_size=fraction, random_state=seed,
                                    stratify=stratify)
    if classification and stratify is None:  # every class stays among the training rows
        missing = np.isin(y[valid], y[train], invert=True)
        train, valid = np.concatenate([train, valid[missing]]), valid[~missing]
    return np.sort(train), np.sort(valid)


class _Booster(BaseEstimator):
    """What both libraries share: input checks, the split, the state that is saved."""

    _classification = False

    def _check(self, X: Any, reset: bool) -> np.ndarray:
        return validate_data(self, X, reset=reset, dtype=np.float64,
                             ensure_all_finite="allow-nan")

    def _fit_data(self, X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
        """X as floats (missing values allowed), y checked like scikit-learn's estimators; a
        classifier's labels become codes 0..K-1 (`classes_`)."""
        X, y = validate_data(self, X, y, dtype=np.float64, ensure_all_finite="allow-nan",
                             ensure_min_samples=2, y_numeric=not self._classification)
        if not self._classification:
            return X, y.astype(np.float64)
        check_classification_targets(y)
        self.classes_, codes = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError("A classifier needs two classes or more; the training rows have "
                             "1 class.")
        return X, codes

    def __getstate__(self) -> dict[str, Any]:
        """The saved state: parameters and the model in the library's own format, never the
        live booster (a native handle)."""
        state = dict(super().__getstate__())  # may be the live __dict__ itself: copy it
        state.pop("booster_", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "model_" in state:
            self.booster_ = self._load(state["model_"])

    def _load(self, model: Any) -> Any:
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


# -- LightGBM ----------------------------------------------------------------------------------

class _LightGBM(_Booster):
    def __init__(self, n_estimators: int = 1000, learning_rate: float = 0.05,
                 num_leaves: int = 31, min_child_samples: int = 20,
                 colsample_bytree: float = 1.0, subsample: float = 1.0,
                 reg_lambda: float = 0.0, min_data_per_group: int = 100,
                 categorical_columns: int = 0, early_stopping_rounds: int = 50,
                 random_state: int = 0, n_jobs: int = 1,
                 max_time_s: float | None = None) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.colsample_bytree = colsample_bytree
        self.subsample = subsample
        self.reg_lambda = reg_lambda
        self.min_data_per_group = min_data_per_group
        self.categorical_columns = categorical_columns
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.max_time_s = max_time_s

    def _params(self, n_classes: int) -> dict[str, Any]:
        objective = ("regression" if not self._classification else
                     "binary" if n_classes == 2 else "multiclass")
        params: dict[str, Any] = {
            "objective": objective, "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves, "min_child_samples": self.min_child_samples,
            "feature_fraction": self.colsample_bytree, "lambda_l2": self.reg_lambda,
            "min_data_per_group": self.min_data_per_group,
            "bagging_fraction": self.subsample, "bagging_freq": 1 if self.subsample < 1 else 0,
            "num_threads": self.n_jobs, "seed": self.random_state, "deterministic": True,
            "force_col_wise": True, "verbosity": -1}
        if objective == "multiclass":
            params["num_class"] = n_classes
        return params

    def fit(self, X: Any, y: Any) -> _LightGBM:
        import lightgbm

        X, target = self._fit_data(X, y)
        n_classes = len(self.classes_) if self._classification else 0
        cats = list(range(min(int(self.categorical_columns), X.shape[1])))
        params = self._params(n_classes)
        dataset = {"categorical_feature": cats, "params": {"verbosity": -1},
                   "free_raw_data": True}
        split = validation_split(target, self._classification, self.random_state)
        clock = [] if self.max_time_s is None else [_lightgbm_deadline(self.max_time_s)]
        if split is None:
            train = lightgbm.Dataset(X, target, **dataset)
            booster = lightgbm.train(params, train, min(self.n_estimators, FALLBACK_ROUNDS),
                                     callbacks=clock)
            best = booster.current_iteration()
        else:
            tr, va = split
            train = lightgbm.Dataset(X[tr], target[tr], **dataset)
            valid = lightgbm.Dataset(X[va], target[va], reference=train, **dataset)
            booster = lightgbm.train(
                params, train, self.n_estimators, valid_sets=[valid],
                callbacks=[lightgbm.early_stopping(self.early_stopping_rounds, verbose=False),
                           *clock])
            best = booster.best_iteration or booster.current_iteration()
        self.n_iter_ = int(best)
        self.model_ = booster.model_to_string(num_iteration=best)
        self.booster_ = self._load(self.model_)  # the same trees the saved file will hold
        return self

    def _load(self, model: str) -> Any:
        import lightgbm

        if not isinstance(model, str):
            raise TypeError("a LightGBM model must be its text format")
        booster = lightgbm.Booster(model_str=model)
        if booster.num_feature() != self.n_features_in_:
            raise ValueError(f"the LightGBM model reads {booster.num_feature()} features, the "
                             f"estimator {self.n_features_in_}")
        return booster

    def _raw(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "model_")
        # one thread: OpenMP's pool made a one-row answer 30x slower (docs/automl/lgbm-catboost.md)
        return self.booster_.predict(self._check(X, reset=False), num_threads=1)


def _lightgbm_deadline(seconds: float) -> Any:
    """A LightGBM callback ending the training after `seconds` (the trees so far are kept)."""
    import lightgbm

    end = time.monotonic() + seconds

    def stop_in_time(env: Any) -> None:
        if time.monotonic() > end:
            raise lightgbm.callback.EarlyStopException(env.iteration,
                                                       env.evaluation_result_list or [])

    stop_in_time.order = 40  # type: ignore[attr-defined]  # after early stopping's own check
    return stop_in_time


class _CatBoostDeadline:
    """A CatBoost callback ending the training after `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.end = time.monotonic() + seconds

    def after_iteration(self, info: Any) -> bool:
        return time.monotonic() <= self.end


class LightGBMClassifier(ClassifierMixin, _LightGBM):
    """LightGBM (binary or multiclass by the number of classes) with native categories."""

    _classification = True

    def predict_proba(self, X: Any) -> np.ndarray:
        raw = self._raw(X)
        if raw.ndim == 1:
            return np.column_stack([1.0 - raw, raw])
        return raw

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)  # checks that it is fitted first
        return self.classes_[np.argmax(proba, axis=1)]


class LightGBMRegressor(RegressorMixin, _LightGBM):
    """LightGBM regression (squared error) with native categories."""

    def predict(self, X: Any) -> np.ndarray:
        return self._raw(X)


# -- CatBoost ----------------------------------------------------------------------------------

class _CatBoost(_Booster):
    def __init__(self, iterations: int = 1000, learning_rate: float = 0.08, depth: int = 6,
                 l2_leaf_reg: float = 3.0, random_strength: float = 1.0,
                 categorical_columns: int = 0, early_stopping_rounds: int = 50,
                 random_state: int = 0, thread_count: int = 1,
                 max_time_s: float | None = None) -> None:
        self.iterations = iterations
        self.learning_rate = learning_rate
        self.depth = depth
        self.l2_leaf_reg = l2_leaf_reg
        self.random_strength = random_strength
        self.categorical_columns = categorical_columns
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.thread_count = thread_count
        self.max_time_s = max_time_s

    def _pool(self, X: np.ndarray, label: np.ndarray | None = None) -> Any:
        """Numbers as float32, category codes as text (CatBoost takes categories as ints or
        strings, never floats); CatBoost orders them numbers first, then categories."""
        from catboost import FeaturesData, Pool

        k = min(int(self.categorical_columns), X.shape[1])
        num = np.ascontiguousarray(X[:, k:], dtype=np.float32)
        cats = None
        if k:
            codes = np.nan_to_num(X[:, :k], nan=-1.0).astype(np.int64)
            cats = codes.astype(str).astype(object)
        return Pool(FeaturesData(num_feature_data=num if num.shape[1] else None,
                                 cat_feature_data=cats), label=label)

    def fit(self, X: Any, y: Any) -> _CatBoost:
        from catboost import CatBoost

        X, target = self._fit_data(X, y)
        n_classes = len(self.classes_) if self._classification else 0
        loss = "RMSE" if not self._classification else \
            "Logloss" if n_classes == 2 else "MultiClass"
        params: dict[str, Any] = {
            "loss_function": loss, "iterations": self.iterations,
            "learning_rate": self.learning_rate, "depth": self.depth,
            "l2_leaf_reg": self.l2_leaf_reg, "random_strength": self.random_strength,
            "random_seed": self.random_state, "thread_count": self.thread_count,
            "logging_level": "Silent", "allow_writing_files": False}
        if self._classification:
            params["class_names"] = list(range(n_classes))
        split = validation_split(target, self._classification, self.random_state)
        clock = None if self.max_time_s is None else [_CatBoostDeadline(self.max_time_s)]
        if split is None:
            params["iterations"] = min(self.iterations, FALLBACK_ROUNDS)
            model = CatBoost(params).fit(self._pool(X, target), callbacks=clock)
        else:
            tr, va = split
            params["early_stopping_rounds"] = self.early_stopping_rounds
            model = CatBoost(params).fit(self._pool(X[tr], target[tr]),
                                         eval_set=self._pool(X[va], target[va]),
                                         use_best_model=True, callbacks=clock)
        self.n_iter_ = int(model.tree_count_)
        with tempfile.TemporaryDirectory() as tmp:  # the public way to get the .cbm bytes
            path = os.path.join(tmp, "model.cbm")
            model.save_model(path, format="cbm")
            with open(path, "rb") as fh:
                self.model_ = fh.read()
        self.booster_ = self._load(self.model_)
        return self

    def _load(self, model: bytes) -> Any:
        from catboost import CatBoost

        if not isinstance(model, bytes):
            raise TypeError("a CatBoost model must be its .cbm bytes")
        booster = CatBoost().load_model(blob=model)
        k = min(int(self.categorical_columns), self.n_features_in_)
        if len(booster.feature_names_) != self.n_features_in_ or \
                len(booster.get_cat_feature_indices()) != k:
            raise ValueError("the CatBoost model's features do not match the estimator's")
        return booster

    def _raw(self, X: Any, kind: str) -> np.ndarray:
        check_is_fitted(self, "model_")
        return np.asarray(self.booster_.predict(self._pool(self._check(X, reset=False)),
                                                prediction_type=kind, thread_count=1))


class CatBoostClassifier(ClassifierMixin, _CatBoost):
    """CatBoost (Logloss or MultiClass) with native categories (ordered target statistics)."""

    _classification = True

    def predict_proba(self, X: Any) -> np.ndarray:
        return self._raw(X, "Probability")

    def predict(self, X: Any) -> np.ndarray:
        proba = self.predict_proba(X)  # checks that it is fitted first
        return self.classes_[np.argmax(proba, axis=1)]


class CatBoostRegressor(RegressorMixin, _CatBoost):
    """CatBoost regression (RMSE) with native categories."""

    def predict(self, X: Any) -> np.ndarray:
        return self._raw(X, "RawFormulaVal").ravel()
