"""Batch predictions beside their input, and the what-if form built from a version's schema
and reference profile (fed to a real fitted pipeline)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from core.data.profile import input_schema
from core.features.preprocess import build_preprocessor
from core.monitor.reference import build_reference
from core.predict import beside_input, predict_with
from core.store import ModelVersion
from core.what_if import what_if_fields


def _mixed_frame(n: int = 60) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "size": np.arange(n, dtype=float),  # median 29.5
        "colour": np.where(np.arange(n) % 3 == 0, "red", "blue"),  # blue most frequent
        "member": np.arange(n) % 4 == 0,  # a bool column: scored as a number, mostly False
        "joined": pd.date_range("2024-01-01", periods=n, freq="D").strftime("%Y-%m-%d"),
        "customer_id": [f"c{i:04d}" for i in range(n)],  # an id: the model drops it
    })
    y = pd.Series(np.where(frame["size"] + rng.normal(0, 5, n) > 30, "yes", "no"))
    return frame, y


def _version(frame: pd.DataFrame, y: pd.Series) -> ModelVersion:
    schema = input_schema(frame)
    return ModelVersion(model_id=1, version=1, artifact_path="", fingerprint="", size_bytes=0,
                        task="binary", target="bought", input_schema=schema,
                        evaluation={"reference": build_reference(frame, schema, y, "binary")})


def test_what_if_fields_start_from_the_training_data() -> None:
    frame, y = _mixed_frame()
    fields = {f.name: f for f in what_if_fields(_version(frame, y))}
    assert (fields["size"].kind, fields["size"].default) == ("number", 29.5)
    assert fields["colour"].kind == "choice"
    assert fields["colour"].options == ("blue", "red") and fields["colour"].default == "blue"
    assert fields["member"].options == (0.0, 1.0) and fields["member"].default == 0.0
    assert fields["joined"].kind == "text" and fields["joined"].default == ""
    assert not fields["customer_id"].used


def test_what_if_without_a_reference_profile_falls_back_to_zero_and_free_text() -> None:
    frame, y = _mixed_frame()
    mv = _version(frame, y)
    mv.evaluation = {}
    fields = {f.name: f for f in what_if_fields(mv)}
    assert fields["size"].default == 0.0
    assert fields["colour"].kind == "text"


def test_the_what_if_defaults_score_through_the_models_pipeline() -> None:
    frame, y = _mixed_frame()
    mv = _version(frame, y)
    pipeline = Pipeline([("prep", build_preprocessor(mv.input_schema, "linear")),
                         ("model", LogisticRegression())]).fit(frame, y)
    row = pd.DataFrame([{f.name: f.default if f.used else None for f in what_if_fields(mv)}])
    out = predict_with(pipeline, mv, row)
    assert list(out.columns) == ["prediction", "proba_no", "proba_yes"]
    assert out["prediction"].iloc[0] in {"yes", "no"}
    assert out[["proba_no", "proba_yes"]].sum(axis=1).iloc[0] == pytest.approx(1.0)


def test_predictions_come_first_and_a_clashing_input_column_is_kept() -> None:
    frame = pd.DataFrame({"a": [1, 2], "prediction": ["old", "old"]})
    preds = pd.DataFrame({"prediction": ["x", "y"], "proba_x": [0.9, 0.2]})
    out = beside_input(preds, frame)
    assert list(out.columns) == ["prediction", "proba_x", "a", "prediction (input)"]
    assert out["prediction (input)"].tolist() == ["old", "old"]


def test_what_if_numbers_start_at_a_readable_median() -> None:
    """The form shows the training median as a person would write it, not float noise."""
    from core.what_if import _field

    field = _field("malic_acid", {"name": "malic_acid", "kind": "numeric", "dtype": "float64"},
                   {"type": "numeric", "sample": [1.87, 1.86]})  # mean: 1.8650000000000002
    assert field.default == 1.865 and repr(field.default) == "1.865"
