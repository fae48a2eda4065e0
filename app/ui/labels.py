"""How the pages name scores and jargon: one score per version, named for what it is, with
its direction, and plain-words help (texts from core.glossary) on every card and column."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.automl.metrics import METRICS
from core.glossary import SCORE_KINDS, explain


def score_kind(estimator: str | None) -> str:
    """What a version's stored score is: an ensemble is scored on its pooled out-of-fold
    predictions, a single pipeline by the mean of its fold scores (core/automl/search.py)."""
    return "oof" if estimator == "ensemble" else "cv"


KIND_LABEL = {"cv": "CV score", "oof": "out-of-fold", "holdout": "holdout"}


def metric_help(metric: str, kind: str | None = None) -> str:
    parts = [METRICS[metric].describe() if metric in METRICS else metric]
    if kind:
        parts.append(SCORE_KINDS[kind])
    return " ".join(parts)


def score_card(col: Any, label: str, value: float | None, metric: str, kind: str) -> None:
    """A metric card: "<label> · <metric> (<kind>)", no arrow (a score is not a change), the
    direction and meaning in the help tooltip."""
    text = f"{value:.4f}" if isinstance(value, float) else "–"
    col.metric(f"{label} · {metric} ({KIND_LABEL[kind]})", text, help=metric_help(metric, kind))


def column_help(columns: list[str], **extra: str) -> dict[str, Any]:
    """column_config entries carrying the plain-words help of each column named by a term."""
    out: dict[str, Any] = {}
    for c in columns:
        text = extra.get(c) or explain(c)
        if text:
            out[c] = st.column_config.Column(help=text)
    return out

