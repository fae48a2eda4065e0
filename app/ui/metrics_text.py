"""Plain-words captions for a version's metrics: which extra metrics an imbalanced target
shows, and what the stored prediction intervals promise (pages/version.py, pages/predict.py)."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.automl.metrics import (
    IMBALANCED_MINORITY_SHARE,
    METRICS,
    shown_metrics,
    stored_imbalance,
)


def version_metrics(evaluation: dict[str, Any] | None, stored: dict[str, float]
                    ) -> tuple[dict[str, float], str | None]:
    """(the metrics to show, a caption saying why the imbalance-only ones are there)."""
    imbalanced = stored_imbalance(evaluation)
    shown = shown_metrics(stored, imbalanced)
    extra = [m for m in shown if m in METRICS and METRICS[m].imbalanced_only]
    if not extra:
        return shown, None
    share = ((evaluation or {}).get("class_balance") or {}).get("minority_share")
    rare = f"{share:.0%} of the rows" if share is not None else "few rows"
    return shown, (f"The target is imbalanced (its rarest class holds {rare}, under "
                   f"{IMBALANCED_MINORITY_SHARE:.0%}): accuracy flatters a model that ignores "
                   f"the rare class, so {' and '.join(extra)} are shown too.")


def interval_caption(evaluation: dict[str, Any] | None) -> str | None:
    """What the stored intervals promise, or None (classifier, or trained before intervals)."""
    doc = (evaluation or {}).get("intervals")
    if not doc:
        return None
    cov = float(doc.get("coverage", 0.9))
    q = doc["half_widths"].get(f"{cov:g}")
    if q is None:
        return None
    levels = ", ".join(f"{float(k):.0%}" for k in doc["half_widths"])
    return (f"Prediction intervals: prediction ± {q:.4g} holds the true value for about "
            f"{cov:.0%} of new rows like the training data (split-conformal on "
            f"{doc.get('n_residuals', 0)} out-of-fold errors; also stored: {levels}).")


def interval_coverage_choice(mv: Any, key: str) -> float | None:
    """A regression version with stored intervals: a coverage picker over its stored levels
    (default its own) and what the lower/upper columns mean; otherwise None, nothing shown."""
    doc = (mv.evaluation or {}).get("intervals") if mv.task == "regression" else None
    if not doc or not doc.get("half_widths"):
        if mv.task == "regression":
            st.caption("This version stores no prediction intervals (trained before they "
                       "were added): retrain it to get lower/upper columns.")
        return None
    levels = [float(k) for k in doc["half_widths"]]
    default = float(doc.get("coverage", 0.9))
    chosen = st.selectbox("Prediction interval coverage", levels, key=key,
                          index=levels.index(default) if default in levels else 0,
                          format_func=lambda v: f"{v:.0%}",
                          help="lower and upper hold the true value for about this share of "
                               "new rows like the training data (split-conformal on "
                               "out-of-fold errors; every row gets the same width).")
    return chosen
