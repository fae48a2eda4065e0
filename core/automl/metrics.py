"""Metrics declared as data: name → how to compute it, its direction and which tasks use it."""

from __future__ import annotations

import warnings
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
    needs_classes: bool = False  # fn(y_true, y_pred, classes): the model's positive class
    # shown in the UI only for an imbalanced target (see IMBALANCED_MINORITY_SHARE); the API
    # and the stored metrics always carry it
    imbalanced_only: bool = False

    @property
    def direction(self) -> str:
        return "higher is better" if self.greater_is_better else "lower is better"

    def describe(self) -> str:
        """Plain-words help for a card or column showing this metric: meaning and direction."""
        return f"{self.name}: {self.plain} ({self.direction})."

    def score(self, y_true, y_pred=None, proba=None, classes=None) -> float:
        if self.needs_proba:
            return float(self.fn(y_true, proba, classes))
        if self.needs_classes:
            return float(self.fn(y_true, y_pred, classes))
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


def _labels(y, classes) -> list:
    """The model's classes when known (so a sample holding one class is still binary), else
    the classes present; sorted, so the binary positive class is the second one."""
    return list(classes) if classes is not None else list(np.unique(y))


def _per_class(score: Callable[..., float]) -> Callable[..., float]:
    """Binary: for the positive class (the second of the sorted classes, as `classes`
    lists them); multiclass: the unweighted mean over classes (macro)."""
    def fn(y, pred, classes=None) -> float:
        labels = _labels(y, classes)
        if len(labels) == 2:
            return score(y, pred, pos_label=labels[1], zero_division=0)
        return score(y, pred, average="macro", zero_division=0)
    return fn


_f1 = _per_class(skm.f1_score)


def _pr_auc(y, proba, classes) -> float:
    """Average precision: binary for the positive class, multiclass macro over one-vs-rest."""
    proba = np.asarray(proba, dtype=float)
    if proba.shape[1] == 2:
        positive = np.asarray(y == classes[1])
        if not positive.any():  # scikit-learn answers 0.0: it is undefined, not bad
            raise ValueError("average precision is undefined without a positive row")
        return skm.average_precision_score(positive, proba[:, 1])
    onehot = np.column_stack([y == c for c in classes])
    present = onehot.any(axis=0)  # a class absent from y has no precision-recall curve
    return skm.average_precision_score(onehot[:, present], proba[:, present], average="macro")


def _mape(y, pred) -> float:
    """Mean |error| / |actual| over rows whose actual value is not 0: a percentage of zero
    is undefined (scikit-learn divides by machine epsilon there and answers ~1e15). Raises
    ValueError (so the metric is left out) when every actual value is 0."""
    y, pred = np.asarray(y, dtype=float), np.asarray(pred, dtype=float)
    nonzero = y != 0
    if not nonzero.any():
        raise ValueError("MAPE is undefined when every actual value is 0")
    return skm.mean_absolute_percentage_error(y[nonzero], pred[nonzero])


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
           "balances missed cases against false alarms (precision and recall); 1.0 is perfect",
           needs_classes=True),
    Metric("precision", CLS, True, False, _per_class(skm.precision_score),
           "of the rows predicted as a class, the share that really are (binary: the "
           "positive class; multiclass: averaged over classes)", needs_classes=True),
    Metric("recall", CLS, True, False, _per_class(skm.recall_score),
           "of the rows that really are a class, the share the model finds (binary: the "
           "positive class; multiclass: averaged over classes)", needs_classes=True),
    Metric("balanced_accuracy", CLS, True, False, skm.balanced_accuracy_score,
           "accuracy with every class weighted equally (the mean recall per class); "
           "always predicting the majority class scores 1 / number of classes",
           imbalanced_only=True),
    Metric("pr_auc", CLS, True, True, _pr_auc,
           "average precision over every threshold (area under the precision-recall "
           "curve); a random model scores the positive share, 1.0 is perfect",
           imbalanced_only=True),
    Metric("rmse", REG, False, False, skm.root_mean_squared_error,
           "the typical size of a prediction error, in the target's own units; large misses "
           "count extra"),
    Metric("mae", REG, False, False, skm.mean_absolute_error,
           "the average size of a prediction error, in the target's own units"),
    Metric("mse", REG, False, False, skm.mean_squared_error,
           "the average squared prediction error, in the target's units squared (rmse "
           "squared)"),
    Metric("mape", REG, False, False, _mape,
           "the average error as a share of the actual value (0.1 = 10 %); rows whose "
           "actual value is 0 are left out"),
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


IMBALANCED_MINORITY_SHARE = 0.20
"""A classification target is imbalanced when its rarest class holds less than this share of
the rows: there accuracy flatters a model that ignores the rare class, so balanced accuracy
and PR-AUC are shown too."""


def minority_share(y, classes=None) -> float | None:
    """The rarest class's share of the rows (None for no rows). With the model's `classes`,
    a class absent from `y` counts as 0 rows: a batch of negatives only is not balanced."""
    labels = np.asarray(y, dtype=object).astype(str)
    if not labels.size:
        return None
    found, counts = np.unique(labels, return_counts=True)
    if classes is not None:
        per = dict(zip(found.tolist(), counts.tolist(), strict=True))
        counts = np.asarray([per.get(str(c), 0) for c in classes])
    return float(counts.min() / labels.size)


def class_balance(y, classes=None) -> dict[str, float | bool]:
    """{"minority_share", "imbalanced"} of a classification target, kept with the evaluation."""
    share = minority_share(y, classes)
    return {"minority_share": round(share or 0.0, 6),
            "imbalanced": share is not None and share < IMBALANCED_MINORITY_SHARE}


def stored_imbalance(evaluation: dict | None) -> bool:
    """Whether a version's target was imbalanced: its stored class balance, or for versions
    trained before it was stored, the confusion matrix's row sums (the true class counts)."""
    ev = evaluation or {}
    if "class_balance" in ev:
        return bool(ev["class_balance"].get("imbalanced"))
    matrix = (ev.get("confusion_matrix") or {}).get("matrix")
    if not matrix:
        return False
    counts = np.asarray(matrix, dtype=float).sum(axis=1)
    return bool(counts.sum() and counts.min() / counts.sum() < IMBALANCED_MINORITY_SHARE)


def shown_metrics(scores: dict[str, float], imbalanced: bool) -> dict[str, float]:
    """The metrics a page shows: those marked `imbalanced_only` only for imbalanced targets;
    names outside the table (a holdout's extras) are kept."""
    return {k: v for k, v in scores.items()
            if imbalanced or k not in METRICS or not METRICS[k].imbalanced_only}


def all_scores(task: str, y_true, y_pred, proba=None, classes=None) -> dict[str, float]:
    """Every metric that applies to the task, for the version's evaluation record. A metric
    undefined on these rows (ROC AUC of one class: scikit-learn warns and answers NaN, or
    raises) is left out, never stored or sent as NaN/null."""
    out: dict[str, float] = {}
    for m in METRICS.values():
        if task in m.tasks and (proba is not None or not m.needs_proba):
            try:
                with warnings.catch_warnings():  # the undefined case is handled below
                    warnings.simplefilter("ignore", UserWarning)
                    value = m.score(y_true, y_pred, proba, classes)
            except ValueError:  # e.g. ROC AUC when a fold holds one class only
                continue
            if np.isfinite(value):
                out[m.name] = value
    return out
