"""Permutation feature importance on held-out rows (the last validation fold)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.inspection import permutation_importance

from core.automl.train import CVResult, TrainingData
from core.enums import Task

MAX_ROWS = 2000
REPEATS = 3


def feature_importance(data: TrainingData, cv: CVResult | None, seed: int = 0
                       ) -> list[dict[str, Any]]:
    """Mean drop in the metric when one column is shuffled, on rows the model did not see."""
    if cv is None or cv.last_model is None or cv.last_valid is None:
        return []
    idx = cv.last_valid
    if len(idx) > MAX_ROWS:
        idx = np.random.default_rng(seed).choice(idx, MAX_ROWS, replace=False)
    X, y = data.X.iloc[idx], data.y.iloc[idx]
    metric, classes = data.metric, data.problem.classes

    def scorer(model: Any, X_: Any, y_: Any) -> float:
        if data.task == Task.REGRESSION:
            return metric.oriented(metric.score(y_.to_numpy(), model.predict(X_)))
        proba = model.predict_proba(X_)
        pred = np.asarray(model.classes_)[np.argmax(proba, axis=1)]
        return metric.oriented(metric.score(y_.to_numpy(), pred, proba, classes))

    res = permutation_importance(cv.last_model, X, y, scoring=scorer, n_repeats=REPEATS,
                                 random_state=seed, n_jobs=1)
    rows = [{"feature": str(c), "importance": float(m), "std": float(s)}
            for c, m, s in zip(X.columns, res.importances_mean, res.importances_std,
                               strict=True)]
    return sorted(rows, key=lambda r: r["importance"], reverse=True)
