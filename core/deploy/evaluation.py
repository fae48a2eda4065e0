"""Evaluating a served version on labelled records (REST evaluate and compare)."""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import BaseModel, Field
from sqlmodel import Session

from core.automl.metrics import all_scores, class_balance
from core.deploy.batcher import score
from core.deploy.deployments import InvalidRequestError
from core.deploy.service import Serving
from core.registry import resolve
from core.store.shapes import Record


def _target_column(name: str, mv: Any, requested: str | None) -> str:
    """The version's recorded target, or for a version without one (imported) the request's."""
    if not mv.target and not requested:
        raise InvalidRequestError(
            f"{name}:{mv.version} records no target column (it was imported), so the request "
            'must say which column holds the true values: add "target": "COLUMN" to the body.')
    if mv.target and requested and requested != mv.target:
        raise InvalidRequestError(
            f"{name}:{mv.version} predicts {mv.target!r}, but the request names target "
            f"{requested!r}: leave out \"target\" or send {mv.target!r}.")
    return mv.target or requested  # type: ignore[return-value]


class Evaluation(BaseModel):
    """`POST /v1/models/{name}/evaluate` (and each version of a compare)."""

    model: str
    version: int
    rows: int
    target: str
    metrics: dict[str, float] = Field(description=(
        "Every metric of the task (core.automl.metrics.METRICS): classification roc_auc, "
        "log_loss, accuracy, f1, precision, recall (binary: the positive class, the second "
        "sorted label; multiclass: macro), balanced_accuracy, pr_auc; regression rmse, mae, "
        "mse, mape (rows with actual 0 left out), r2. A metric undefined on these records "
        "(e.g. roc_auc with one class) is left out."))
    minority_share: float | None = Field(default=None, description=(
        "Classification: the rarest class's share of these records."))
    imbalanced: bool | None = Field(default=None, description=(
        "Classification: minority_share below 0.2; pages then show balanced_accuracy and "
        "pr_auc."))


def evaluate_records(serving: Serving, ref: str, records: list[Record],
                     requested_target: str | None = None, *, session: Session) -> Evaluation:
    """Metrics of a version on labelled records, scored through the serving cache (the
    same path as predictions). A version without a recorded target (imported) takes the
    request's."""
    name, mv = resolve(ref, session=session)
    target = _target_column(name, mv, requested_target)
    lm = serving.warm(name, mv.version)
    if any(target not in r for r in records):
        raise InvalidRequestError(f"Every record needs the target column {target!r} to "
                                  "evaluate.")
    y = [r[target] for r in records]
    if any(v is None for v in y):
        raise InvalidRequestError(f"The target column {target!r} has empty values.")
    preds, proba = score(lm, records)
    balance: dict[str, Any] = {}  # classification: minority share, imbalanced
    if lm.classes is not None:
        y_arr = np.asarray([_as_label(v, lm.classes) for v in y], dtype=object)
        metrics = all_scores(mv.task, y_arr, np.asarray(preds, dtype=object), proba,
                             np.asarray(lm.classes, dtype=object))
        balance = class_balance(y_arr, lm.classes)
    else:
        try:
            y_arr = np.asarray(y, dtype=float)
        except (TypeError, ValueError):
            raise InvalidRequestError(f"The target {target!r} must be numeric.") from None
        metrics = all_scores(mv.task, y_arr, np.asarray(preds, dtype=float))
    return Evaluation(model=name, version=mv.version, rows=len(records), target=target,
                      metrics=metrics, **balance)


def _as_label(value: Any, classes: list[Any]) -> Any:
    """Feedback/evaluation labels arrive as JSON: match them to the model's class labels."""
    if value in classes:
        return value
    for c in classes:
        if str(c) == str(value):
            return c
    return value
