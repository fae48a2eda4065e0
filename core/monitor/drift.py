"""Drift between a batch and a reference profile, per feature, without crying wolf.

The test depends on type and sample size, as Evidently does: below LARGE_SAMPLE rows a
statistical test (two-sample KS for numbers, chi-square for categories) whose p-values are
corrected for the number of features tested (Holm-Bonferroni), so that one window of 50
features does not raise alarms by chance; from LARGE_SAMPLE rows on, where every tiny shift is
"significant", an effect size against a fixed threshold (Wasserstein distance normed by the
reference's standard deviation, Jensen-Shannon distance). PSI is reported alongside.
Whatever the sample size, categories never seen in training (UNSEEN_SHARE of the values) and
a feature missing far more often than in training (in every row, at worst) are drift.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon
from typing_extensions import TypedDict

from core.enums import ColumnKind
from core.monitor.reference import OTHER, _numeric_values
from core.store.shapes import ColumnReference, DriftReference

LARGE_SAMPLE = 1000
ALPHA = 0.05                 # family-wise error rate per window for the p-value tests
WASSERSTEIN_THRESHOLD = 0.1  # in reference standard deviations
JS_THRESHOLD = 0.1
MIN_ROWS = 30                # fewer rows than this: no verdict, just "too few rows"
UNSEEN_SHARE = 0.05          # categories never seen in training, share of values: drift
MISSING_RISE = 0.1           # missing share above the training data's by more: drift


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    test: str
    statistic: float | None
    p_value: float | None
    effect_size: float | None
    psi: float | None
    threshold: float
    drifted: bool
    n: int
    note: str = ""


def psi(ref_freq: np.ndarray, cur_freq: np.ndarray) -> float:
    eps = 1e-4
    r, c = np.clip(ref_freq, eps, None), np.clip(cur_freq, eps, None)
    return float(np.sum((c - r) * np.log(c / r)))


def _numeric(name: str, ref: ColumnReference, values: np.ndarray) -> FeatureDrift:
    sample = np.asarray(ref["sample"], dtype=float)
    edges = np.asarray(ref["edges"], dtype=float)
    n = len(values)
    p = None
    if len(edges) > 2:
        inner = edges[1:-1]
        ref_hist = np.bincount(np.searchsorted(inner, sample, side="right"),
                               minlength=len(inner) + 1) / max(len(sample), 1)
        cur_hist = np.bincount(np.searchsorted(inner, values, side="right"),
                               minlength=len(inner) + 1) / max(n, 1)
        p = psi(ref_hist, cur_hist)
    std = ref.get("std") or float(np.std(sample)) or 1.0
    wd = float(stats.wasserstein_distance(sample, values)) / std
    if n < LARGE_SAMPLE:
        ks = stats.ks_2samp(sample, values)
        return FeatureDrift(name, "ks", float(ks.statistic), float(ks.pvalue), wd, p, ALPHA,
                            False, n)
    return FeatureDrift(name, "wasserstein", wd, None, wd, p, WASSERSTEIN_THRESHOLD,
                        wd > WASSERSTEIN_THRESHOLD, n)


def _categorical(name: str, ref: ColumnReference, values: pd.Series) -> FeatureDrift:
    freqs = ref["frequencies"]
    known = [k for k in freqs if k != OTHER]
    counts = values.astype(str).value_counts()
    cur = np.array([counts.get(k, 0) for k in known] + [counts[~counts.index.isin(known)].sum()],
                   dtype=float)
    refp = np.array([freqs[k] for k in known] + [freqs.get(OTHER, 0.0)], dtype=float)
    n = int(cur.sum())
    curp = cur / max(n, 1)
    js = float(jensenshannon(refp, curp, base=2)) if n else 0.0
    p = psi(refp, curp)
    keep = refp > 0
    unseen = cur[~keep].sum() / max(n, 1)
    new = f"{unseen:.0%} of values are categories never seen in training"
    if n < LARGE_SAMPLE:
        if keep.sum() < 2 or cur[keep].sum() == 0:
            # no mix to test among the known categories; unseen ones are still drift
            # (every value unseen used to pass as "single category")
            drifted = unseen >= UNSEEN_SHARE
            return FeatureDrift(name, "chi2", None, 0.0 if drifted else 1.0, js, p, ALPHA,
                                False, n, new if drifted else "single category")
        expected = refp[keep] / refp[keep].sum() * cur[keep].sum()
        chi = stats.chisquare(cur[keep], np.maximum(expected, 1e-9))
        pval = float(chi.pvalue) if unseen < UNSEEN_SHARE else 0.0
        return FeatureDrift(name, "chi2", float(chi.statistic), pval, js, p, ALPHA, False, n,
                            new if unseen >= UNSEEN_SHARE else "")
    return FeatureDrift(name, "jensen_shannon", js, None, js, p, JS_THRESHOLD,
                        js > JS_THRESHOLD or unseen >= UNSEEN_SHARE, n,
                        new if unseen >= UNSEEN_SHARE else "")


def _missing_rise(name: str, ref: ColumnReference, rows: int, present: int, tests: int
                  ) -> FeatureDrift | None:
    """A feature missing far more often than in training (in every row, at worst) is drift
    whatever its present values look like: the model imputes, or fails, on all of them.
    Flagged when the missing share rose by more than MISSING_RISE and a one-sided binomial
    test against the training share holds at ALPHA / features (Bonferroni)."""
    if rows < MIN_ROWS:
        return None
    share, base = (rows - present) / rows, float(ref.get("missing") or 0.0)
    if share - base <= MISSING_RISE:
        return None
    p = float(stats.binomtest(rows - present, rows, base, alternative="greater").pvalue)
    if p > ALPHA / max(tests, 1):
        return None
    return FeatureDrift(name, "missing", share, None, share - base, None, MISSING_RISE, True,
                        present, f"missing in {share:.0%} of rows (training data: {base:.0%})")


def _holm(results: list[FeatureDrift]) -> list[FeatureDrift]:
    """Holm-Bonferroni across the p-value tests: the family-wise false-alarm rate stays at
    ALPHA however many features are tested."""
    tested = sorted((r for r in results if r.p_value is not None), key=lambda r: r.p_value)
    m = len(tested)
    flagged: set[str] = set()
    for i, r in enumerate(tested):
        if r.p_value <= ALPHA / (m - i):
            flagged.add(r.feature)
        else:
            break
    out = []
    for r in results:
        if r.p_value is not None:
            r = replace(r, drifted=r.feature in flagged, threshold=ALPHA / m if m else ALPHA)
        out.append(r)
    return out


def compare(reference: DriftReference, batch: pd.DataFrame) -> list[FeatureDrift]:
    """Per-feature drift of `batch` against a version's reference profile."""
    results = []
    rows, tests = len(batch), len(reference["features"])
    for name, ref in reference["features"].items():
        # a feature absent from the batch is missing in every row, not "not tested"
        col = batch[name] if name in batch.columns else pd.Series(np.nan, index=batch.index)
        if ref["type"] == "numeric":
            kind = ColumnKind.NUMERIC if pd.api.types.is_numeric_dtype(col) else ColumnKind.DATETIME
            values = _numeric_values(col, kind)
            if (missing := _missing_rise(name, ref, rows, len(values), tests)) is not None:
                results.append(missing)
            elif len(values) < MIN_ROWS:
                results.append(FeatureDrift(name, "ks", None, None, None, None, ALPHA, False,
                                            len(values), "too few rows for a verdict"))
            else:
                results.append(_numeric(name, ref, values))
        else:
            values = col.dropna()
            if (missing := _missing_rise(name, ref, rows, len(values), tests)) is not None:
                results.append(missing)
            elif len(values) < MIN_ROWS:
                results.append(FeatureDrift(name, "chi2", None, None, None, None, ALPHA, False,
                                            len(values), "too few rows for a verdict"))
            else:
                results.append(_categorical(name, ref, values))
    results = _holm(results)
    return sorted(results, key=lambda r: (not r.drifted, -(r.effect_size or 0)))


class DriftSummary(TypedDict):
    features: int
    drifted: list[str]
    share_drifted: float


def summary(results: list[FeatureDrift]) -> DriftSummary:
    drifted = [r.feature for r in results if r.drifted]
    return {"features": len(results), "drifted": drifted,
            "share_drifted": len(drifted) / len(results) if results else 0.0}
