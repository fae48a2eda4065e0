"""Altair chart builders shared by the pages (pure functions: data in, chart out)."""

from __future__ import annotations

import warnings
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from core.automl.metrics import METRICS
from core.enums import ColumnKind, TrialState

# -- searches ------------------------------------------------------------------------------
# A trial without a score (pruned by the early-stopping rule, or failed) still ran: it is drawn
# on a line beyond the worst score (below it when higher is better, above it when lower is
# better, so it never looks like a good score), shaped by how it ended, in its family's colour:
# a family whose every trial was pruned or failed is on the chart and in the legend.
STATES = [TrialState.OK.value, TrialState.PRUNED.value, TrialState.FAILED.value]
STATE_SHAPES = ["circle", "triangle-down", "cross"]
UNSCORED_NOTE = ("▼ pruned and ✕ failed trials have no score: they sit on a line just past "
                 "the worst score, in their family's colour.")


SEARCH_HEIGHT = 240  # of the plot itself: the legends below add to it
# Fit the width only: the theme fits the height too, which would squeeze the plot to make room
# for the legends below it.
FIT_WIDTH = alt.AutoSizeParams(type="fit-x", contains="padding")


def _trial_axis() -> alt.Axis:
    """Trial numbers are whole: no 2.5 between trial 2 and trial 3."""
    return alt.Axis(tickMinStep=1, format="d")


def _placed(trials: pd.DataFrame, greater_is_better: bool = True) -> pd.DataFrame:
    """Trials with a plotting height `y`: the score of a scored trial, a line just past the
    worst score for the others (their own `score` is left empty, as it is)."""
    frame = trials.copy()
    frame["status"] = frame["status"].astype(str)
    ok = (frame["status"] == TrialState.OK) & frame["score"].notna()
    scores = frame.loc[ok, "score"].astype(float)
    if scores.empty:
        floor = 0.0
    else:
        low, high = float(scores.min()), float(scores.max())
        span = high - low or abs(low) * 0.1 or 0.1
        floor = low - 0.15 * span if greater_is_better else high + 0.15 * span
    frame["y"] = frame["score"].where(ok, floor).astype(float)
    frame["state"] = frame["status"].where(frame["status"].isin(STATES), TrialState.FAILED)
    frame["reason"] = frame["reason"].fillna("") if "reason" in frame else ""
    return frame


def _family_and_state(trials: pd.DataFrame) -> dict[str, alt.Color | alt.Shape]:
    """Colour by family, shape by how the trial ended; legends below the plot, so a chart in
    a narrow column (a tablet) keeps its width for the points."""
    families = sorted(trials["estimator"].astype(str).unique())
    legend = {"orient": "bottom", "direction": "vertical", "labelLimit": 0}
    return {"color": alt.Color("estimator:N", title="family", scale=alt.Scale(domain=families),
                               legend=alt.Legend(**legend)),
            "shape": alt.Shape("state:N", title="trial",
                               scale=alt.Scale(domain=STATES, range=STATE_SHAPES),
                               legend=alt.Legend(**legend))}


def best_so_far(trials: pd.DataFrame, metric: str, greater_is_better: bool) -> alt.LayerChart:
    """Every trial by number (scored ones at their CV score, pruned and failed ones on a line
    past the worst score) and the running best of the scored ones."""
    frame = _placed(trials.sort_values("trial"), greater_is_better)
    ok = frame[frame["state"] == TrialState.OK].copy()
    ok["best so far"] = ok["score"].cummax() if greater_is_better else ok["score"].cummin()
    x = alt.X("trial:Q", title="trial", axis=_trial_axis())
    points = alt.Chart(frame).mark_point(size=60, filled=True, opacity=0.7).encode(
        x=x, y=alt.Y("y:Q", title=f"{metric} (CV)", scale=alt.Scale(zero=False)),
        **_family_and_state(frame),
        tooltip=["trial:Q", "estimator:N", "state:N", alt.Tooltip("score:Q", format=".4f"),
                 "reason:N", "params:N"])
    line = alt.Chart(ok).mark_line(color="black", interpolate="step-after").encode(
        x=x, y="best so far:Q")
    return (points + line).properties(height=SEARCH_HEIGHT, autosize=FIT_WIDTH)


def score_vs_speed(trials: pd.DataFrame, metric: str,
                   greater_is_better: bool | None = None) -> alt.Chart:
    """Score against prediction time; pruned and failed trials that were timed sit on a line
    past the worst score (a trial that failed before it was timed has no place on this chart:
    the counts table lists it). The direction defaults to the metric's own."""
    if greater_is_better is None:
        known = METRICS.get(metric)
        greater_is_better = known.greater_is_better if known else True
    placed = _placed(trials, greater_is_better)
    timed = placed["predict_ms_per_1k"].notna() & (placed["predict_ms_per_1k"] > 0)
    return alt.Chart(placed[timed]).mark_point(size=70, filled=True, opacity=0.8).encode(
        x=alt.X("predict_ms_per_1k:Q", title="predict time per 1,000 rows (ms)",
                scale=alt.Scale(type="log")),
        y=alt.Y("y:Q", title=f"{metric} (CV)", scale=alt.Scale(zero=False)),
        **_family_and_state(placed),
        tooltip=["trial:Q", "estimator:N", "state:N", alt.Tooltip("score:Q", format=".4f"),
                 "predict_ms_per_1k:Q", "reason:N", "params:N"]
    ).properties(height=SEARCH_HEIGHT, autosize=FIT_WIDTH)


def trial_counts(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials per estimator family and how they ended (scored, pruned, failed), one row per
    family that ran at all, with a total row: what the charts cannot place is counted here."""
    columns = ["family", "scored", *STATES[1:], "total"]
    if trials.empty:
        return pd.DataFrame(columns=columns)
    frame = _placed(trials)
    table = pd.crosstab(frame["estimator"], frame["state"]).reindex(columns=STATES,
                                                                    fill_value=0)
    table = table.rename(columns={TrialState.OK.value: "scored"})
    table["total"] = table.sum(axis=1)
    table = table.reset_index().rename(columns={"estimator": "family"})
    table.columns.name = None
    if not table.empty:
        total = {"family": "all", **{c: int(table[c].sum()) for c in table.columns[1:]}}
        table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return table


def grouped_bars(frame: pd.DataFrame, *, x: str, group: str, value: str, y_title: str,
                 title: str, x_order: list[str] | None = None) -> alt.LayerChart:
    """Bars of `value` by `x`, one bar per `group` side by side (Compare page). A row without a
    value (a family none of whose trials was scored) is marked "no score" on the zero line
    rather than left out."""
    frame = frame.copy()
    frame["missing"] = frame[value].isna()
    groups = list(dict.fromkeys(frame[group].astype(str)))
    enc = {"x": alt.X(f"{x}:N", sort=x_order, title=None,
                      axis=alt.Axis(labelOverlap=False, labelLimit=0, labelAngle=0)),
           "xOffset": alt.XOffset(f"{group}:N", sort=groups),
           "color": alt.Color(f"{group}:N", sort=groups, title=None,
                              legend=alt.Legend(orient="bottom", labelLimit=0))}
    tooltip = [f"{x}:N", f"{group}:N", alt.Tooltip(f"{value}:Q", format=".4f")]
    scored = alt.Chart(frame[~frame["missing"]]).encode(
        **enc, y=alt.Y(f"{value}:Q", title=y_title), tooltip=tooltip)
    bars = scored.mark_bar()
    # the value on each bar: close scores (0.981 against 0.983) look alike as bars
    values = scored.mark_text(baseline="bottom", dy=-3, fontSize=11).encode(
        text=alt.Text(f"{value}:Q", format=".4f"))
    none = alt.Chart(frame[frame["missing"]].assign(zero=0.0)).mark_text(
        text="no score", angle=270, align="left", baseline="middle", fontWeight="bold").encode(
        **enc, y="zero:Q", tooltip=[f"{x}:N", f"{group}:N"])
    return (bars + values + none).properties(height=300, title=title)


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


def roc_curve(points: dict[str, list[float]], auc: float | None = None) -> alt.LayerChart:
    """The ROC curve against the diagonal of a coin toss, its AUC in the title (the stored
    roc_auc when given, else the area under the points drawn)."""
    frame = pd.DataFrame(points).sort_values(["fpr", "tpr"])
    if auc is None:
        auc = float(np.trapezoid(frame["tpr"], frame["fpr"])) if len(frame) > 1 else None
    title = f"ROC curve (AUC {auc:.3f})" if auc is not None else "ROC curve"
    axes = {"x": alt.X("fpr:Q", title="false positive rate", scale=alt.Scale(domain=[0, 1])),
            "y": alt.Y("tpr:Q", title="true positive rate", scale=alt.Scale(domain=[0, 1]))}
    line = alt.Chart(frame).mark_line().encode(
        **axes, tooltip=[alt.Tooltip("fpr:Q", format=".3f"), alt.Tooltip("tpr:Q", format=".3f")])
    diagonal = alt.Chart(pd.DataFrame({"fpr": [0.0, 1.0], "tpr": [0.0, 1.0]})).mark_line(
        strokeDash=[4, 4], color="gray").encode(**axes)
    return (diagonal + line).properties(
        title=alt.TitleParams(title, subtitle="dashed: a coin toss (AUC 0.5)"), height=260)


def residuals(points: dict[str, list[float]]) -> alt.Chart:
    return alt.Chart(pd.DataFrame(points)).mark_circle(opacity=0.5).encode(
        x=alt.X("predicted:Q", scale=alt.Scale(zero=False)), y="residual:Q",
        tooltip=["actual:Q", "predicted:Q", "residual:Q"]).properties(height=260)


def _every_label() -> alt.Axis:
    """A category axis that shows every label whole: the Streamlit theme drops labels it finds
    crowded (labelOverlap) and cuts them at 100 px (labelLimit)."""
    return alt.Axis(labelOverlap=False, labelLimit=0, title=None)


BAR_STEP = 22  # pixels per bar: the chart grows with the number of bars, never squeezes them


def importance(rows: list[dict[str, Any]], top: int = 15) -> alt.Chart:
    """The `top` features by permutation importance, every one labelled."""
    frame = pd.DataFrame(rows[:top])
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("importance:Q", title="drop in score when shuffled"),
        y=alt.Y("feature:N", sort="-x", axis=_every_label()),
        tooltip=["feature:N", "importance:Q", "std:Q"]
    ).properties(height=alt.Step(BAR_STEP), title="Feature importance")


# -- a column's distribution (Data page) ------------------------------------------------------
TOP_CATEGORIES = 30
# (unit name, pandas period, d3 time format): the finest unit that keeps the bars <= MAX_BARS
TIME_UNITS = [("day", "D", "%Y-%m-%d"), ("week", "W", "%Y-%m-%d"), ("month", "M", "%Y-%m"),
              ("quarter", "Q", "%Y-Q%q"), ("year", "Y", "%Y")]
MAX_BARS = 60


def distribution(series: pd.Series, name: str, kind: str | None = None) -> alt.Chart:
    """How one column's values spread: a histogram of numbers, rows over time for dates (by
    day, week, month, quarter or year, as the span fits), the most common values otherwise.
    `kind` is the column's profiled kind (core.data.profile): "datetime" charts text dates."""
    values = series.dropna()
    if kind == ColumnKind.DATETIME or pd.api.types.is_datetime64_any_dtype(values):
        times = as_utc_times(values)
        if len(times):
            return timeline(times, name)
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        return alt.Chart(pd.DataFrame({"value": values})).mark_bar().encode(
            alt.X("value:Q", bin=alt.Bin(maxbins=40), title=name),
            alt.Y("count():Q", title="rows"))
    counts = values.astype(str).value_counts()
    top = counts.head(TOP_CATEGORIES).rename_axis("value").reset_index(name="rows")
    title = (f"The {TOP_CATEGORIES} most common of {len(counts)} values"
             if len(counts) > TOP_CATEGORIES else f"All {len(counts)} values")
    return alt.Chart(top).mark_bar().encode(
        x=alt.X("rows:Q", title="rows"), y=alt.Y("value:N", sort="-x", axis=_every_label()),
        tooltip=["value:N", "rows:Q"]).properties(height=alt.Step(BAR_STEP), title=title)


def as_utc_times(values: pd.Series) -> pd.Series:
    """Dates as naive UTC timestamps, unparseable ones dropped (text dates of mixed formats and
    offsets included, read as core.data.profile reads them)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
    return parsed.dropna().dt.tz_localize(None)


def time_unit(times: pd.Series) -> tuple[str, str, str]:
    """The finest of day/week/month/quarter/year that needs at most MAX_BARS bars."""
    for unit in TIME_UNITS:
        periods = times.dt.to_period(unit[1])
        if (periods.max() - periods.min()).n + 1 <= MAX_BARS:
            return unit
    return TIME_UNITS[-1]


def timeline(times: pd.Series, name: str) -> alt.Chart:
    """Rows per period, each bar spanning its period on a time axis (in UTC)."""
    unit, freq, fmt = time_unit(times)
    counts = times.dt.to_period(freq).value_counts().sort_index()
    frame = pd.DataFrame({
        "start": [p.start_time.strftime("%Y-%m-%dT%H:%M:%SZ") for p in counts.index],
        "end": [(p + 1).start_time.strftime("%Y-%m-%dT%H:%M:%SZ") for p in counts.index],
        unit: [str(p) for p in counts.index], "rows": counts.to_numpy()})
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("start:T", title=f"{name} (by {unit}, UTC)", scale=alt.Scale(type="utc"),
                axis=alt.Axis(format=fmt, formatType="utc")),
        x2="end:T", y=alt.Y("rows:Q", title=f"rows per {unit}"), y2=alt.datum(0),
        tooltip=[f"{unit}:N", "rows:Q"]
    ).properties(height=280, title=f"Rows per {unit}, {times.min():%Y-%m-%d} to "
                                   f"{times.max():%Y-%m-%d}")


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
