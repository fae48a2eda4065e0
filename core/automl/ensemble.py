"""Greedy ensemble selection (Caruana et al., 2004) over out-of-fold predictions.

Starting from the best single pipeline, repeatedly add (with replacement) the trial whose
predictions most improve the averaged out-of-fold score. The ensemble is kept only when it
beats the best single pipeline on the same validation rows.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import ClassifierTags, RegressorTags, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from core.automl.metrics import Metric
from core.enums import Task

MAX_CANDIDATES = 12   # best trials considered as members
ROUNDS = 30           # greedy additions (with replacement)
MIN_GAIN = 1e-6       # relative improvement needed to keep the ensemble


@dataclass(frozen=True)
class EnsembleSelection:
    members: list[int]      # indexes into the candidate list
    weights: list[float]
    score: float


def _score(metric: Metric, y, pred_or_proba: np.ndarray, classes: list | None) -> float:
    if classes is None:
        return metric.score(y, pred_or_proba)
    labels = np.asarray(classes)[np.argmax(pred_or_proba, axis=1)]
    return metric.score(y, labels, pred_or_proba, classes)


def select(metric: Metric, y: np.ndarray, predictions: list[np.ndarray],
           classes: list | None, rounds: int = ROUNDS) -> EnsembleSelection:
    """`predictions[i]` is candidate i's OOF probabilities (classification) or values."""
    scores = [metric.oriented(_score(metric, y, p, classes)) for p in predictions]
    chosen = [int(np.argmax(scores))]
    total = predictions[chosen[0]].astype(float).copy()
    best = scores[chosen[0]]
    for _ in range(rounds - 1):
        k = len(chosen)
        trial_scores = [metric.oriented(_score(metric, y, (total + p) / (k + 1), classes))
                        for p in predictions]
        j = int(np.argmax(trial_scores))
        if trial_scores[j] < best - 1e-12 and len(set(chosen)) > 1:
            break
        chosen.append(j)
        total += predictions[j]
        best = max(best, trial_scores[j])
    counts = Counter(chosen)
    members = sorted(counts)
    weights = [counts[m] / len(chosen) for m in members]
    blended = sum(w * predictions[m] for m, w in zip(members, weights, strict=True))
    final = _score(metric, y, blended, classes)
    return EnsembleSelection(members, weights, final)


class WeightedEnsemble(BaseEstimator):
    """Weighted average of fitted pipelines' probabilities (or predictions, for regression).
    Lives in core.automl so the artifact loader trusts it.

    Its parameter `pipelines` holds members that are already fitted (the search's refits), so
    it is fitted as soon as they are; `fit` refits those same members in place."""

    def __init__(self, pipelines=None, weights=None, task="binary"):
        self.pipelines = pipelines
        self.weights = weights
        self.task = task

    @property
    def classes_(self):
        return self.pipelines[0].classes_

    @property
    def n_features_in_(self) -> int:
        return self.pipelines[0].n_features_in_

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted when every member is (members arrive fitted)."""
        if not self.pipelines:
            return False
        try:
            for p in self.pipelines:
                check_is_fitted(p)
        except NotFittedError:
            return False
        return True

    def fit(self, X, y):  # members arrive fitted; fitting again refits each of them
        for p in self.pipelines:
            p.fit(X, y)
        return self

    @available_if(lambda self: self.task != Task.REGRESSION)
    def predict_proba(self, X):
        check_is_fitted(self)
        return sum(w * p.predict_proba(X) for p, w in zip(self.pipelines, self.weights,
                                                            strict=True))

    def predict(self, X):
        check_is_fitted(self)
        if self.task == Task.REGRESSION:
            return sum(w * p.predict(X) for p, w in zip(self.pipelines, self.weights,
                                                         strict=True))
        return np.asarray(self.classes_)[np.argmax(self.predict_proba(X), axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy (classification) or R² (regression), as scikit-learn's mixins define it."""
        scorer = r2_score if self.task == Task.REGRESSION else accuracy_score
        return float(scorer(y, self.predict(X), sample_weight=sample_weight))

    def __sklearn_tags__(self):
        """A classifier or a regressor by its task; the inputs every member takes (sparse
        matrices, missing values)."""
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
