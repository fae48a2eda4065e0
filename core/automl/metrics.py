"""Metrics declared as data: name → how to compute it, its direction and which tasks use it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sklearn import metrics as skm

from core.errors import WorkbenchError


@dataclass(frozen=True)
class Metric:
    name: str
    tasks: frozenset[str]
    greater_is_better: bool
    needs_proba: bool
    fn: Callable[..., float]
    plain: str = ""  # what the number means, in plain words (UI help texts, docs)

    @property
    def direction(self) -> str:
        return "higher is better" if self.greater_is_better else "lower is better"

    def describe(self) -> str:
        """Plain-words help for a card or column showing this metric: meaning and direction."""
        return f"{self.name}: {self.plain} ({self.direction})."

    def score(self, y_true, y_pred=None, proba=None, classes=None) -> float:
        if self.needs_proba:
            return float(self.fn(y_true, proba, classes))
        return float(self.fn(y_true, y_pred))

    def oriented(self, value: float) -> float:
        """Higher is always better, for ranking."""
        return value if self.greater_is_better else -value


def _roc_auc(y, proba, classes) -> float:
    if proba.shape[1] == 2:
        return skm.roc_auc_score(y == classes[1], proba[:, 1])
    return skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes)


def _log_loss(y, proba, classes) -> float:
    proba = np.asarray(proba, dtype=float)
    return skm.log_loss(y, proba / proba.sum(axis=1, keepdims=True), labels=classes)


def _f1(y, pred) -> float:
    labels = np.unique(y)
    if len(labels) == 2:
        return skm.f1_score(y, pred, pos_label=labels[1])
    return skm.f1_score(y, pred, average="macro")


CLS = frozenset({"binary", "multiclass"})
REG = frozenset({"regression"})

METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("roc_auc", CLS, True, True, _roc_auc,
           "how well the model ranks a positive case above a negative one; 0.5 is a coin "
           "toss, 1.0 is perfect"),
    Metric("log_loss", CLS, False, True, _log_loss,
           "how far the predicted probabilities are from what happened; confident wrong "
           "answers cost the most, 0 is perfect"),
    Metric("accuracy", CLS, True, False, skm.accuracy_score,
           "the share of rows whose class is predicted right"),
    Metric("f1", CLS, True, False, _f1,
           "balances missed cases against false alarms (precision and recall); 1.0 is perfect"),
    Metric("rmse", REG, False, False, skm.root_mean_squared_error,
           "the typical size of a prediction error, in the target's own units; large misses "
           "count extra"),
    Metric("mae", REG, False, False, skm.mean_absolute_error,
           "the average size of a prediction error, in the target's own units"),
    Metric("r2", REG, True, False, skm.r2_score,
           "the share of the target's variation the model explains; 1.0 is perfect, 0 is no "
           "better than always predicting the average"),
]}

DEFAULT_METRIC = {"binary": "roc_auc", "multiclass": "log_loss", "regression": "rmse"}


def get_metric(name: str | None, task: str) -> Metric:
    name = name or DEFAULT_METRIC[task]
    metric = METRICS.get(name)
    if metric is None:
        raise WorkbenchError(f"Unknown metric {name!r}. Choose one of: "
                             f"{', '.join(METRICS)}.")
    if task not in metric.tasks:
        fitting = ", ".join(m.name for m in METRICS.values() if task in m.tasks)
        raise WorkbenchError(f"The metric {name!r} does not apply to a {task} problem. "
                             f"Choose one of: {fitting}.")
    return metric


def all_scores(task: str, y_true, y_pred, proba=None, classes=None) -> dict[str, float]:
    """Every metric that applies to the task, for the version's evaluation record."""
    out: dict[str, float] = {}
    for m in METRICS.values():
        if task in m.tasks and (proba is not None or not m.needs_proba):
            try:
                out[m.name] = m.score(y_true, y_pred, proba, classes)
            except ValueError:  # e.g. ROC AUC when a fold holds one class only
                continue
    return out
