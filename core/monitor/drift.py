"""Drift between a batch and a reference profile, per feature, without crying wolf.

The test depends on type and sample size, as Evidently does: below LARGE_SAMPLE rows a
statistical test (two-sample KS for numbers, chi-square for categories) whose p-values are
corrected for the number of features tested (Holm-Bonferroni), so that one window of 50
features does not raise alarms by chance; from LARGE_SAMPLE rows on, where every tiny shift is
"significant", an effect size against a fixed threshold (Wasserstein distance normed by the
reference's standard deviation, Jensen-Shannon distance). PSI is reported alongside.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from core.monitor.reference import OTHER, _numeric_values

LARGE_SAMPLE = 1000
ALPHA = 0.05                 # family-wise error rate per window for the p-value tests
WASSERSTEIN_THRESHOLD = 0.1  # in reference standard deviations
JS_THRESHOLD = 0.1
MIN_ROWS = 30                # fewer rows than this: no verdict, just "too few rows"


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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def psi(ref_freq: np.ndarray, cur_freq: np.ndarray) -> float:
    eps = 1e-4
    r, c = np.clip(ref_freq, eps, None), np.clip(cur_freq, eps, None)
    return float(np.sum((c - r) * np.log(c / r)))


def _numeric(name: str, ref: dict[str, Any], values: np.ndarray) -> FeatureDrift:
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


def _categorical(name: str, ref: dict[str, Any], values: pd.Series) -> FeatureDrift:
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
    if n < LARGE_SAMPLE:
        keep = refp > 0
        expected = refp[keep] / refp[keep].sum() * cur[keep].sum()
        if keep.sum() < 2 or cur[keep].sum() == 0:
            return FeatureDrift(name, "chi2", None, 1.0, js, p, ALPHA, False, n,
                                "single category")
        chi = stats.chisquare(cur[keep], np.maximum(expected, 1e-9))
        unseen = cur[~keep].sum() / max(n, 1)
        pval = float(chi.pvalue) if unseen < 0.05 else 0.0
        return FeatureDrift(name, "chi2", float(chi.statistic), pval, js, p, ALPHA, False, n,
                            "new categories appeared" if unseen >= 0.05 else "")
    return FeatureDrift(name, "jensen_shannon", js, None, js, p, JS_THRESHOLD, js > JS_THRESHOLD,
                        n)


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
            r = FeatureDrift(**{**r.to_dict(), "drifted": r.feature in flagged,
                                "threshold": ALPHA / m if m else ALPHA})
        out.append(r)
    return out


def compare(reference: dict[str, Any], batch: pd.DataFrame) -> list[FeatureDrift]:
    """Per-feature drift of `batch` against a version's reference profile."""
    results = []
    for name, ref in reference["features"].items():
        if name not in batch.columns:
            continue
        col = batch[name]
        if ref["type"] == "numeric":
            kind = "datetime" if not pd.api.types.is_numeric_dtype(col) else "numeric"
            values = _numeric_values(col, kind)
            if len(values) < MIN_ROWS:
                results.append(FeatureDrift(name, "ks", None, None, None, None, ALPHA, False,
                                            len(values), "too few rows for a verdict"))
                continue
            results.append(_numeric(name, ref, values))
        else:
            values = col.dropna()
            if len(values) < MIN_ROWS:
                results.append(FeatureDrift(name, "chi2", None, None, None, None, ALPHA, False,
                                            len(values), "too few rows for a verdict"))
                continue
            results.append(_categorical(name, ref, values))
    results = _holm(results)
    return sorted(results, key=lambda r: (not r.drifted, -(r.effect_size or 0)))


def summary(results: list[FeatureDrift]) -> dict[str, Any]:
    drifted = [r.feature for r in results if r.drifted]
    return {"features": len(results), "drifted": drifted,
            "share_drifted": len(drifted) / len(results) if results else 0.0}
