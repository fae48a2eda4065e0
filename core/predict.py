"""Batch prediction with a registered version: the contract's output columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlmodel import Session

from core.automl.intervals import half_width
from core.enums import Task
from core.features.inputs import model_input
from core.registry import load_pipeline
from core.store import ModelVersion


@dataclass
class Prediction:
    model: str
    version: ModelVersion
    # `prediction` plus `proba_<label>` per class (or `lower`, `upper` for a regression with
    # intervals), in input row order
    frame: pd.DataFrame


def interval_half_width(mv: ModelVersion, coverage: float | None = None) -> float | None:
    """The version's stored conformal half-width at `coverage` (default its stated one); None
    for classifiers and for versions trained before intervals were stored."""
    if Task(mv.task).is_classification:
        return None
    return half_width((mv.evaluation or {}).get("intervals"), coverage,
                      f"version {mv.version}")


def predict_with(pipeline: Any, mv: ModelVersion, frame: pd.DataFrame,
                 coverage: float | None = None) -> pd.DataFrame:
    """Rows of a market model are raw price history: its indicator features are rebuilt from
    them first (each row from its own past), as at training time, by the same function the
    REST routes use (`core.features.inputs.model_input`).

    A regression version with stored intervals adds `lower` and `upper` (the prediction
    interval at `coverage`, default the version's stated coverage, core.automl.intervals)."""
    q = interval_half_width(mv, coverage)  # an unknown level fails before any scoring
    X = model_input(mv, frame)
    out = pd.DataFrame(index=frame.index)
    if not Task(mv.task).is_classification:
        out["prediction"] = np.asarray(pipeline.predict(X), dtype=float)
        if q is not None:
            out["lower"] = out["prediction"] - q
            out["upper"] = out["prediction"] + q
        return out
    proba = pipeline.predict_proba(X)
    classes = list(pipeline.classes_)
    out["prediction"] = np.asarray(classes, dtype=object)[np.argmax(proba, axis=1)]
    for j, label in enumerate(classes):
        out[f"proba_{label}"] = proba[:, j]
    return out


def predict(ref: str, frame: pd.DataFrame, *, session: Session,
            coverage: float | None = None) -> Prediction:
    """Resolve and load `ref` (verified), then score every row of `frame`."""
    name, mv, pipeline = load_pipeline(ref, session=session)
    return Prediction(name, mv, predict_with(pipeline, mv, frame, coverage))


def beside_input(predictions: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """The prediction columns first, then the input row by row; an input column named like
    one of them (a file of earlier predictions) is kept as `<name> (input)`."""
    clash = {c: f"{c} (input)" for c in frame.columns if c in predictions.columns}
    return pd.concat([predictions, frame.rename(columns=clash)], axis=1)
