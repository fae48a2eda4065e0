"""Prediction intervals for regression: split-conformal on out-of-fold residuals.

Every row of the training data was predicted by a model of the chosen configuration that did
not see it (the search's cross-validation folds). The absolute errors of those predictions
are the calibration set: for a coverage 1 - alpha, the interval of a new prediction p is
p ± q, where q is the ceil((n + 1)(1 - alpha))-th smallest of the n errors (the finite-sample
correction of split-conformal prediction). For a new row exchangeable with the training rows
the interval holds the true value with probability at least 1 - alpha, on average over rows.

It is not a per-row guarantee (every interval has the same width) and it assumes new rows
come from the same distribution; under drift or in time order it can cover less. The models
in the folds saw (k-1)/k of the rows, fewer than the final refit: their errors are, if
anything, larger, so the intervals lean wide.

A few levels are stored with the version, so a caller may ask for any of them; other levels
would need the residuals again (a retrain).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from core.errors import InputError
from core.store.shapes import IntervalsDoc


class UnknownCoverageError(InputError):
    """A coverage level the version did not store (422, like any out-of-range value)."""

    code = "invalid_request"
    http_status = 422


DEFAULT_COVERAGE = 0.9
COVERAGE_LEVELS = (0.5, 0.8, 0.9, 0.95, 0.99)
METHOD = "split-conformal on out-of-fold absolute residuals"


def conformal_quantile(residuals: np.ndarray, coverage: float) -> float | None:
    """The ceil((n+1)·coverage)-th smallest |residual|; None when n is too small for the
    level (that rank would exceed n: the interval would be infinite)."""
    errors = np.sort(np.abs(np.asarray(residuals, dtype=float)))
    errors = errors[np.isfinite(errors)]
    n = errors.size
    rank = math.ceil((n + 1) * coverage)
    if n == 0 or rank > n:
        return None
    return float(errors[rank - 1])


def calibrate(residuals: np.ndarray, levels: Sequence[float] = COVERAGE_LEVELS
              ) -> IntervalsDoc | None:
    """The document stored in `Evaluation.intervals`: half-widths per coverage level (those
    the number of residuals allows); None when even the default level is out of reach."""
    widths = {f"{lv:g}": q for lv in levels
              if (q := conformal_quantile(residuals, lv)) is not None}
    if f"{DEFAULT_COVERAGE:g}" not in widths:
        return None
    return {"method": METHOD, "coverage": DEFAULT_COVERAGE, "n_residuals": int(
        np.isfinite(np.asarray(residuals, dtype=float)).sum()), "half_widths": widths}


def half_width(doc: IntervalsDoc | None, coverage: float | None = None,
               label: str = "this version") -> float | None:
    """The stored half-width for `coverage` (default: the version's stated coverage); None
    when the version stores no intervals. A level that was not stored is the caller's
    mistake: InputError naming the levels there are."""
    if not doc:
        return None
    widths = doc.get("half_widths") or {}
    wanted = doc.get("coverage", DEFAULT_COVERAGE) if coverage is None else coverage
    for level, q in widths.items():
        if abs(float(level) - wanted) < 1e-9:
            return float(q)
    raise UnknownCoverageError(
        f"Coverage {wanted:g} is not available for {label}: it stores intervals for "
        f"{', '.join(widths)}. Ask for one of those (other levels need a retrain).")


def intervals(predictions: Sequence[float] | np.ndarray, q: float | None
              ) -> list[list[float]] | None:
    """[[lower, upper], …] around each prediction, or None without a half-width."""
    if q is None:
        return None
    p = np.asarray(predictions, dtype=float)
    return np.column_stack([p - q, p + q]).tolist()
