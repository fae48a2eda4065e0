"""Drift that finds real shifts and does not cry wolf on resamples of the reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.monitor.drift import compare
from core.monitor.reference import build_reference

N_FEATURES = 8


def _population(n: int, rng: np.random.Generator) -> pd.DataFrame:
    cols = {f"x{i}": rng.normal(i, 1 + i / 4, n) for i in range(N_FEATURES - 2)}
    cols["plan"] = rng.choice(["basic", "pro", "team"], n, p=[0.5, 0.3, 0.2])
    cols["region"] = rng.choice(list("ABCDEFGH"), n)
    return pd.DataFrame(cols)


def _reference(rng: np.random.Generator) -> dict:
    train = _population(5000, rng)
    schema = [{"name": c, "kind": "numeric" if pd.api.types.is_numeric_dtype(train[c])
               else "categorical"}
              for c in train.columns]
    return build_reference(train, schema, pd.Series(rng.integers(0, 2, 5000)), "binary")


@pytest.mark.parametrize("rows", [100, 10_000])
def test_resamples_of_the_reference_raise_few_flags_and_never_three_in_a_row(rows: int) -> None:
    rng = np.random.default_rng(0)
    ref = _reference(rng)
    flagged_windows = []
    for _ in range(100):
        window = _population(rows, rng)
        flagged_windows.append(any(r.drifted for r in compare(ref, window)))
    rate = sum(flagged_windows) / len(flagged_windows)
    assert rate <= 0.10, f"false-alarm rate per window {rate:.0%}"
    runs = max((len(r) for r in "".join("x" if f else "." for f in flagged_windows).split(".")),
               default=0)
    assert runs < 3, "an alert needing 3 consecutive bad windows would have fired"


@pytest.mark.parametrize("rows", [100, 10_000])
def test_a_shifted_feature_is_flagged_and_named(rows: int) -> None:
    rng = np.random.default_rng(1)
    ref = _reference(rng)
    hits = 0
    for _ in range(5):
        window = _population(rows, rng)
        window["x2"] = window["x2"] + 0.6 * (1 + 2 / 4)  # +0.6 standard deviations
        drifted = {r.feature for r in compare(ref, window) if r.drifted}
        hits += drifted == {"x2"}
    assert hits >= 4


def test_a_category_mix_change_is_flagged_with_its_test() -> None:
    rng = np.random.default_rng(2)
    ref = _reference(rng)
    window = _population(400, rng)
    window["plan"] = rng.choice(["basic", "pro", "team"], 400, p=[0.2, 0.3, 0.5])
    results = {r.feature: r for r in compare(ref, window)}
    assert results["plan"].drifted and results["plan"].test == "chi2"
    assert results["plan"].psi > 0.1 and results["plan"].effect_size > 0.1
    assert not results["x0"].drifted


def test_too_few_rows_give_no_verdict() -> None:
    rng = np.random.default_rng(3)
    results = compare(_reference(rng), _population(10, rng))
    assert all(not r.drifted and "too few rows" in r.note for r in results)


@pytest.mark.parametrize("rows", [100, 2_000])
def test_a_batch_of_only_unseen_categories_is_flagged(rows: int) -> None:
    """Every value a category the training data never had (PSI ~17) used to pass as
    "single category": no drift."""
    rng = np.random.default_rng(4)
    ref = _reference(rng)
    window = _population(rows, rng)
    window["plan"] = "enterprise"
    results = {r.feature: r for r in compare(ref, window)}
    assert results["plan"].drifted and results["plan"].psi > 10
    assert "never seen in training" in results["plan"].note
    assert not results["region"].drifted


def test_a_feature_missing_in_every_row_is_flagged() -> None:
    """Whether the values are null or the column is absent, a feature the training data
    always had is drift when every row lacks it; a few nulls are not."""
    rng = np.random.default_rng(5)
    ref = _reference(rng)
    for window in (_population(100, rng).assign(x1=np.nan, plan=None),
                   _population(100, rng).drop(columns=["x1", "plan"])):
        results = {r.feature: r for r in compare(ref, window)}
        for feature in ("x1", "plan"):
            r = results[feature]
            assert r.drifted and r.test == "missing" and r.n == 0
            assert "missing in 100% of rows (training data: 0%)" in r.note
        assert not results["x0"].drifted
    window = _population(100, rng)
    window.loc[window.index[:3], "x1"] = np.nan  # 3 % missing: not a shift worth an alert
    assert not {r.feature: r for r in compare(ref, window)}["x1"].drifted
