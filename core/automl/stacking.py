"""A second-layer stacker on the members' out-of-fold predictions, and k-fold bagged members.

Stacking: a linear model (multinomial logistic regression on the members' log-probabilities,
non-negative least squares on their values for regression) learns how to combine members that
the greedy ensemble can only average. It is kept only when its own cross-validated score on
the out-of-fold rows beats the greedy ensemble's (or the best single pipeline's) in-sample
score: the stacker is fitted on some OOF rows and scored on others it never saw, the greedy
reference is scored on the rows it chose its weights on, so the comparison leans towards the
greedy ensemble, never towards the stacker.

Bagging: on small shuffled k-fold tables the search keeps the fold models of its best few
trials; a member is then its k fold models averaged (a `WeightedEnsemble` of them, so the
serving lean path and ONNX export cover it as they cover any ensemble) instead of one refit on
every row. The fold models are what produced the out-of-fold predictions the ensemble weights
and the stacker were learned on, and no refit time is spent.

The rules are data (`STACKING`, `BAGGING`); the fitted `StackedEnsemble` is plain data (its
members and the combiner's coefficients as arrays), trusted by exact name in
core/registry/trust.py.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.utils import ClassifierTags, RegressorTags, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from core.automl import budget as bud
from core.automl.ensemble import WeightedEnsemble, _score
from core.automl.metrics import Metric
from core.enums import Task

EPS = 1e-6  # probabilities are clipped to [EPS, 1 - EPS] before their logarithm


@dataclass(frozen=True)
class StackingRule:
    """When a stacker is tried and when it is kept."""

    folds: int          # inner folds over the out-of-fold rows (the stacker's own evaluation)
    min_rows: int       # fewer OOF rows than this: too few to learn and judge a combiner
    max_cells: int      # rows x stacker features above this: not tried (time)
    members: int        # members when the greedy ensemble kept a single pipeline
    min_gain: float     # relative improvement over the reference needed to keep it
    c: float            # inverse regularisation of the logistic stacker


@dataclass(frozen=True)
class BaggingRule:
    """When the search keeps fold models so members can be bagged instead of refitted."""

    max_rows: int       # more rows than this: fold models are not kept (memory); refit
    min_folds: int      # a single holdout is no bag
    members: int        # fold models are kept for this many best trials


STACKING = StackingRule(folds=5, min_rows=50, max_cells=2_000_000, members=3, min_gain=1e-3,
                        c=1.0)
# 5,000 rows: up to 3 x 5 fold models held at once stay small, and the tables the memory goal
# measures (>= 10k rows, so >= 7.5k training rows) are not affected
BAGGING = BaggingRule(max_rows=5_000, min_folds=2, members=3)


def bagging_possible(rows: int, folds: int, time_ordered: bool) -> bool:
    """Whether a search on this table keeps fold models for bagging (the rule, as data)."""
    return rows <= BAGGING.max_rows and folds >= BAGGING.min_folds and not time_ordered


def features(outputs: list[np.ndarray], task: str) -> np.ndarray:
    """The stacker's inputs from each member's probabilities (classification) or values:
    log-odds of the positive class (binary), log-probabilities (multiclass), values
    (regression)."""
    if task == Task.REGRESSION:
        return np.column_stack([np.asarray(o, dtype=float).ravel() for o in outputs])
    cols = []
    for o in outputs:
        p = np.clip(np.asarray(o, dtype=float), EPS, 1 - EPS)
        cols.append(np.log(p[:, 1] / p[:, 0])[:, None] if task == Task.BINARY else np.log(p))
    return np.hstack(cols)


def _combiner(task: str, seed: int) -> Any:
    if task == Task.REGRESSION:
        return LinearRegression(positive=True)  # non-negative stacking (Breiman)
    return LogisticRegression(C=STACKING.c, max_iter=300, random_state=seed)


def _combine(X: np.ndarray, coef: np.ndarray, intercept: np.ndarray, task: str) -> np.ndarray:
    """Probabilities (classification) or values (regression) from the stacker's features."""
    z = X @ coef.T + intercept
    if task == Task.REGRESSION:
        return z.ravel()
    if task == Task.BINARY:
        p1 = 1.0 / (1.0 + np.exp(-z.ravel()))
        return np.column_stack([1 - p1, p1])
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class StackerFit:
    coef: np.ndarray
    intercept: np.ndarray
    oof: np.ndarray     # the stacker's own out-of-fold outputs on the rows it was judged on
    score: float        # the metric on those rows


def cross_validated_stacker(metric: Metric, y: np.ndarray, outputs: list[np.ndarray],
                            task: str, classes: list | None, *, seed: int,
                            deadline: float | None = None) -> StackerFit | None:
    """Fit the stacker on the OOF rows of all but one inner fold and predict that fold, for
    each fold (its honest score), then on every row (the model kept). None when the rule says
    not to try, an inner fold lacks a class, or the next fold would not end by `deadline`
    (core.automl.budget.next_fold_fits: no work starts that cannot end in time)."""
    X = features(outputs, task)
    if len(y) < STACKING.min_rows or X.size > STACKING.max_cells:
        return None
    splitter = _splitter(y, task, seed)
    if splitter is None:
        return None
    oof = np.zeros((len(y), len(classes))) if classes is not None else np.zeros(len(y))
    walls: list[float] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for tr, va in splitter.split(X, y):
            if not bud.next_fold_fits(walls, deadline):
                return None
            started = time.monotonic()
            fitted = _fit(X[tr], y[tr], task, classes, seed)
            if fitted is None:
                return None
            oof[va] = _combine(X[va], *fitted, task)
            walls.append(time.monotonic() - started)
        if not bud.next_fold_fits(walls, deadline):
            return None
        final = _fit(X, y, task, classes, seed)
    if final is None:
        return None
    return StackerFit(final[0], final[1], oof, _score(metric, y, oof, classes))


def keeps(metric: Metric, fit: StackerFit | None, reference: float) -> bool:
    """Whether the stacker's cross-validated score beats `reference` (the greedy ensemble's
    in-sample score, or the best single pipeline's) by the rule's relative margin."""
    if fit is None or not np.isfinite(fit.score):
        return False
    margin = STACKING.min_gain * max(abs(reference), 1e-9)
    return metric.oriented(fit.score) - metric.oriented(reference) > margin


def _splitter(y: np.ndarray, task: str, seed: int) -> Any:
    if task == Task.REGRESSION:
        return KFold(STACKING.folds, shuffle=True, random_state=seed)
    _, counts = np.unique(y, return_counts=True)
    if counts.min() < STACKING.folds:
        return None  # a class too rare to be in every inner fold
    return StratifiedKFold(STACKING.folds, shuffle=True, random_state=seed)


def _fit(X: np.ndarray, y: np.ndarray, task: str, classes: list | None,
         seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    model = _combiner(task, seed).fit(X, y)
    if task == Task.REGRESSION:
        return np.atleast_2d(model.coef_), np.atleast_1d(model.intercept_)
    if list(model.classes_) != list(classes):
        return None
    return model.coef_, model.intercept_


def outputs_of(pipeline: Any, X: Any, task: str) -> np.ndarray:
    return pipeline.predict(X) if task == Task.REGRESSION else pipeline.predict_proba(X)


class StackedEnsemble(BaseEstimator):
    """Fitted members and a linear combiner of their outputs (a second layer).

    Plain data: `pipelines` (fitted members, each a pipeline or a bag of them), `coef` and
    `intercept` (arrays), `task`. It arrives fitted, as `WeightedEnsemble` does; `fit` refits
    the members in place and keeps the combiner (it was learned on out-of-fold outputs, which
    a refit on the same rows cannot reproduce)."""

    def __init__(self, pipelines=None, coef=None, intercept=None, task="binary"):
        self.pipelines = pipelines
        self.coef = coef
        self.intercept = intercept
        self.task = task

    @property
    def classes_(self):
        return self.pipelines[0].classes_

    @property
    def n_features_in_(self) -> int:
        return self.pipelines[0].n_features_in_

    def __sklearn_is_fitted__(self) -> bool:
        if not self.pipelines or self.coef is None:
            return False
        try:
            for p in self.pipelines:
                check_is_fitted(p)
        except NotFittedError:
            return False
        return True

    def fit(self, X, y):
        for p in self.pipelines:
            p.fit(X, y)
        return self

    def _outputs(self, X) -> np.ndarray:
        check_is_fitted(self)
        stacked = features([outputs_of(p, X, self.task) for p in self.pipelines], self.task)
        return _combine(stacked, np.asarray(self.coef, dtype=float),
                        np.asarray(self.intercept, dtype=float), self.task)

    @available_if(lambda self: self.task != Task.REGRESSION)
    def predict_proba(self, X):
        return self._outputs(X)

    def predict(self, X):
        out = self._outputs(X)
        if self.task == Task.REGRESSION:
            return out
        return np.asarray(self.classes_)[np.argmax(out, axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        scorer = r2_score if self.task == Task.REGRESSION else accuracy_score
        return float(scorer(y, self.predict(X), sample_weight=sample_weight))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if self.task == Task.REGRESSION:
            tags.estimator_type, tags.regressor_tags = "regressor", RegressorTags()
        else:
            tags.estimator_type, tags.classifier_tags = "classifier", ClassifierTags()
        if self.pipelines:
            members = [get_tags(p).input_tags for p in self.pipelines]
            tags.input_tags.sparse = all(m.sparse for m in members)
            tags.input_tags.allow_nan = all(m.allow_nan for m in members)
        return tags


def bag(fold_models: list[Any], task: str) -> WeightedEnsemble:
    """k fold models as one member: their equal-weight average."""
    return WeightedEnsemble(list(fold_models), [1.0 / len(fold_models)] * len(fold_models),
                            task)


def flatten(members: list[Any], weights: list[float], task: str) -> WeightedEnsemble:
    """A weighted ensemble whose members may be bags, as one flat weighted ensemble of
    pipelines (what the serving lean path and ONNX export know)."""
    pipelines, flat = [], []
    for m, w in zip(members, weights, strict=True):
        if type(m) is WeightedEnsemble:
            pipelines += list(m.pipelines)
            flat += [w * float(v) for v in m.weights]
        else:
            pipelines.append(m)
            flat.append(w)
    return WeightedEnsemble(pipelines, flat, task)
