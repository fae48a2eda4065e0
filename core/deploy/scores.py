"""Scores of served predictions against the true values fed back later, over the metric
catalogue (`core.automl.metrics`): the one way live accuracy (and RMSE, ...) is computed,
for the Monitor page, `workbench monitor`, `GET /v1/models/{name}/monitor` and PERFORMANCE
alerts. It sits in `core.deploy` so the serving runtime's scorecards can use it too.

Only metrics of labels are live (no probabilities are logged with a prediction); a label that
arrives as JSON is matched to the predicted one as text (`1` and `"1"` are the same class).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from core.automl.metrics import METRICS
from core.enums import Task

LIVE_METRICS = ("accuracy", "f1", "rmse", "mae")


def live_scores(task: str, predictions: Sequence[Any], actual: Sequence[Any]
                ) -> dict[str, float | int]:
    """`n` and every live metric that applies to `task`, for paired predictions and labels."""
    metrics = [METRICS[m] for m in LIVE_METRICS if task in METRICS[m].tasks]
    if not Task(task).is_classification:
        y_pred = np.asarray(predictions, dtype=float)
        y_true = np.asarray(actual, dtype=float)
    else:
        y_pred = np.asarray([str(p) for p in predictions], dtype=object)
        y_true = np.asarray([str(a) for a in actual], dtype=object)
    out: dict[str, float | int] = {"n": len(y_true)}
    for metric in metrics:
        try:
            out[metric.name] = metric.score(y_true, y_pred)
        except ValueError:  # not computable on these rows (e.g. F1 of a class mix): left out
            continue
    return out


__all__ = ["LIVE_METRICS", "live_scores"]
