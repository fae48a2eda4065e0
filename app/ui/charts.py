"""Altair chart builders shared by the pages (pure functions: data in, chart out)."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd

from core.enums import TrialState


def best_so_far(trials: pd.DataFrame, metric: str, greater_is_better: bool) -> alt.Chart:
    """Each trial's score and the running best, by trial number."""
    ok = trials[trials["status"] == TrialState.OK].sort_values("trial").copy()
    ok["best so far"] = (ok["score"].cummax() if greater_is_better else ok["score"].cummin())
    points = alt.Chart(ok).mark_circle(size=50, opacity=0.5).encode(
        x=alt.X("trial:Q", title="trial"), y=alt.Y("score:Q", title=metric,
                                                    scale=alt.Scale(zero=False)),
        color=alt.Color("estimator:N"), tooltip=["trial:Q", "estimator:N", "score:Q", "params:N"])
    line = alt.Chart(ok).mark_line(color="black", interpolate="step-after").encode(
        x="trial:Q", y="best so far:Q")
    return (points + line).properties(height=280)


def score_vs_speed(trials: pd.DataFrame, metric: str) -> alt.Chart:
    ok = trials[trials["status"] == TrialState.OK]
    return alt.Chart(ok).mark_circle(size=70).encode(
        x=alt.X("predict_ms_per_1k:Q", title="predict time per 1,000 rows (ms)",
                scale=alt.Scale(type="log")),
        y=alt.Y("score:Q", title=metric, scale=alt.Scale(zero=False)),
        color="estimator:N", tooltip=["trial:Q", "estimator:N", "score:Q",
                                      "predict_ms_per_1k:Q", "params:N"]).properties(height=280)


def confusion_matrix(cm: dict[str, Any]) -> alt.Chart:
    labels = cm["labels"]
    rows = [{"actual": a, "predicted": p, "count": cm["matrix"][i][j]}
            for i, a in enumerate(labels) for j, p in enumerate(labels)]
    base = alt.Chart(pd.DataFrame(rows)).encode(
        x=alt.X("predicted:N", sort=labels), y=alt.Y("actual:N", sort=labels))
    return (base.mark_rect().encode(color=alt.Color("count:Q", scale=alt.Scale(scheme="blues")))
            + base.mark_text().encode(text="count:Q")).properties(height=240)


def curve(points: dict[str, list[float]], x: str, y: str, title: str) -> alt.Chart:
    return alt.Chart(pd.DataFrame(points)).mark_line().encode(
        x=alt.X(f"{x}:Q", scale=alt.Scale(domain=[0, 1])),
        y=alt.Y(f"{y}:Q", scale=alt.Scale(domain=[0, 1]))).properties(title=title, height=260)


def residuals(points: dict[str, list[float]]) -> alt.Chart:
    return alt.Chart(pd.DataFrame(points)).mark_circle(opacity=0.5).encode(
        x=alt.X("predicted:Q", scale=alt.Scale(zero=False)), y="residual:Q",
        tooltip=["actual:Q", "predicted:Q", "residual:Q"]).properties(height=260)


def importance(rows: list[dict[str, Any]], top: int = 15) -> alt.Chart:
    frame = pd.DataFrame(rows[:top])
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("importance:Q", title="drop in score when shuffled"),
        y=alt.Y("feature:N", sort="-x"), tooltip=["feature:N", "importance:Q", "std:Q"]
    ).properties(height=max(120, 22 * len(frame)))


def equity(points: list[dict[str, Any]]) -> alt.Chart:
    """Equity curves of the long/flat strategy and of buy-and-hold over time."""
    frame = pd.DataFrame(points)
    value_cols = [c for c in ("strategy", "buy_and_hold") if c in frame.columns]
    time_col = next((c for c in ("time", "date", "at") if c in frame.columns), frame.columns[0])
    long = frame.melt(id_vars=[time_col], value_vars=value_cols, var_name="curve",
                      value_name="equity")
    return alt.Chart(long).mark_line().encode(
        x=alt.X(f"{time_col}:T", title=None), y=alt.Y("equity:Q", scale=alt.Scale(zero=False)),
        color="curve:N", tooltip=[f"{time_col}:T", "curve:N", "equity:Q"]
    ).properties(height=280)
