"""The contract every catalogue entry keeps (core/automl/catalog.py), checked for each entry and
each task it serves: its defaults lie in its search space, every corner of that space builds an
estimator that accepts the values, a point drawn by the search's own sampler gives a pipeline
that fits a tiny table of that task and predicts the right shape (classifiers: probabilities
summing to 1 over the user's labels), and the fitted pipeline survives the registry's safe
save and verified load unchanged. Adding an entry to the catalogue adds its cases here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution

from core.automl.catalog import CATALOG, EstimatorSpec
from core.automl.search import SAMPLERS, _grid_axes
from core.automl.train import build_pipeline
from core.data.profile import input_schema
from core.features.schema import align_to_schema
from core.registry.artifacts import load_verified, save_pipeline

ROWS = 120  # enough for every k-NN size the space allows; small enough for one quick fit
CASES = [pytest.param(key, task, id=f"{key}-{task}")
         for key, spec in CATALOG.items() for task in sorted(spec.tasks)]
LABELS = {"binary": ["no", "yes"], "multiclass": [1, 2, 3]}


def _table(task: str) -> tuple[pd.DataFrame, np.ndarray, list[dict[str, Any]]]:
    """Numbers (with gaps), a category, dates: every preprocessing branch, as training sees
    them (profiled, then aligned to the schema)."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"num": rng.normal(size=ROWS), "num2": rng.normal(size=ROWS),
                      "plan": rng.choice(["basic", "plus", "pro", None], size=ROWS),
                      "when": pd.date_range("2020-01-01", periods=ROWS, freq="D").astype(str)})
    X.loc[::9, "num"] = np.nan
    y = rng.normal(size=ROWS) if task == "regression" else rng.choice(LABELS[task], size=ROWS)
    schema = input_schema(X)
    return align_to_schema(X, schema), y, schema


def _in_space(spec: EstimatorSpec, name: str, value: Any) -> bool:
    dist = spec.space[name]
    if isinstance(dist, CategoricalDistribution):
        return value in dist.choices
    return dist.low <= value <= dist.high


def _corners(spec: EstimatorSpec) -> list[dict[str, Any]]:
    """Every parameter at its lowest, then at its highest value (categories: first, last)."""
    axes = _grid_axes(spec)
    return [{k: v[0] for k, v in axes.items()}, {k: v[-1] for k, v in axes.items()}]


@pytest.mark.parametrize("key", sorted(CATALOG))
def test_defaults_lie_inside_the_search_space(key: str) -> None:
    spec = CATALOG[key]
    assert spec.defaults, "the search asks the known-good defaults first"
    for point in spec.defaults:
        assert set(point) <= set(spec.space), point
        outside = [k for k, v in point.items() if not _in_space(spec, k, v)]
        assert not outside, f"{key} defaults outside the space: {outside}"
    assert not set(spec.fixed) & set(spec.space), "a parameter is either fixed or searched"


@pytest.mark.parametrize(("key", "task"), CASES)
def test_every_corner_of_the_space_builds_a_valid_estimator(key: str, task: str) -> None:
    spec = CATALOG[key]
    _, _, schema = _table(task)
    for point in _corners(spec):
        model = build_pipeline(spec, task, point, schema).named_steps["model"]
        inner = getattr(model, "estimator", model)
        if hasattr(inner, "_parameter_constraints"):  # scikit-learn's: checked first in fit
            inner._validate_params()


@pytest.mark.parametrize(("key", "task"), CASES)
def test_a_sampled_pipeline_fits_predicts_and_round_trips(key: str, task: str,
                                                          home: Path) -> None:
    spec = CATALOG[key]
    X, y, schema = _table(task)
    study = optuna.create_study(direction="maximize", sampler=SAMPLERS["random"](0))
    params = study.ask(spec.space).params  # as the search draws a trial
    assert all(_in_space(spec, k, v) for k, v in params.items())

    pipe = build_pipeline(spec, task, params, schema).fit(X, y)
    predicted = pipe.predict(X)
    assert predicted.shape == (ROWS,)
    if task == "regression":
        assert np.isfinite(predicted.astype(float)).all()
        assert not hasattr(pipe, "predict_proba"), "a regressor gives no probabilities"
    else:
        assert list(pipe.classes_) == LABELS[task]  # the user's labels, not codes
        assert set(predicted) <= set(LABELS[task])
        proba = pipe.predict_proba(X)
        assert proba.shape == (ROWS, len(LABELS[task]))
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
        assert (proba >= 0).all()

    stored = save_pipeline(pipe, f"contract-{key}")
    loaded = load_verified(stored.relpath, stored.fingerprint, f"contract-{key}:1")
    np.testing.assert_array_equal(loaded.predict(X), predicted)
    if task != "regression":
        np.testing.assert_allclose(loaded.predict_proba(X), pipe.predict_proba(X))


def test_every_entry_is_covered() -> None:
    """The cases above are built from the catalogue itself: nothing to update by hand."""
    assert {p.values[0] for p in CASES} == set(CATALOG)
    assert all(spec.tasks for spec in CATALOG.values())
