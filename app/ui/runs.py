"""The Runs page's pieces: the filter bar, the table of runs across experiments, and the
comparison of the chosen runs (params and metrics side by side, each run's metric history,
and a parallel-coordinates chart of params against the score). Frames and charts are pure
functions of `core.tracking`'s public models; the widgets return what was chosen."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial

import altair as alt
import pandas as pd
import streamlit as st

from app.ui.layout import CHART_WIDTH, FIELD_WIDTH, responsive_columns
from app.ui.times import when
from core.tracking.filters import EXAMPLE
from core.tracking.public import (
    ExperimentPublic,
    RunComparison,
    RunDetailPublic,
    RunPublic,
)
from core.tracking.states import RunStatus

COLUMNS = ["start_time", "end_time", "name", "status", "id", "experiment"]
PAGE_SIZES = [25, 50, 100]
COMPARE = "runs_compare"  # the chosen run ids (the multiselect's key)
LABELS = "runs_labels"  # id → label of every run shown so far (chosen runs on other pages)
TABLE = "runs_table"
SCORE_AXIS = "▸ score"  # the last axis of the parallel coordinates


@dataclass(frozen=True)
class RunQuery:
    """What the filter bar asks `core.tracking.list_runs` for."""

    experiments: list[str]
    statuses: list[str]
    filters: list[str]
    sort: str
    top_level: bool
    limit: int


def label(run: RunPublic) -> str:
    return f"{run.id} · {run.experiment} · {run.name}"


def split_filters(text: str) -> list[str]:
    """Filters typed on one line, separated by ';' (or on several lines)."""
    return [f.strip() for f in text.replace("\n", ";").split(";") if f.strip()]


def sort_options(runs: list[RunPublic]) -> list[str]:
    """The columns, then every metric and param the runs logged."""
    metrics = sorted({k for r in runs for k in r.metrics})
    params = sorted({k for r in runs for k in r.params})
    return COLUMNS + [f"metrics.{k}" for k in metrics] + [f"params.{k}" for k in params]


def filter_bar(experiments: list[ExperimentPublic], known: list[RunPublic]) -> RunQuery:
    """Experiment, status, a filter expression, the sort and the page size. `known`: runs
    whose metric and param names the sort offers."""
    c1, c2 = responsive_columns(2, min_width=FIELD_WIDTH, key="runs_filter_row")
    chosen = c1.multiselect("Experiments", [e.name for e in experiments], key="runs_experiments",
                            placeholder="all experiments")
    statuses = c2.multiselect("Status", [s.value for s in RunStatus], key="runs_status",
                              placeholder="any status")
    text = st.text_input("Filter by param or metric", key="runs_filter",
                         placeholder="metrics.roc_auc>0.9; params.estimator=linear",
                         help=f"KIND.KEY OP VALUE, several separated by ';' ({EXAMPLE}). "
                              "Metrics compare their latest value.")
    c1, c2, c3, c4 = responsive_columns(4, min_width=FIELD_WIDTH, key="runs_sort_row")
    options = sort_options(known)
    if st.session_state.get("runs_sort") not in options:
        st.session_state["runs_sort"] = "start_time"
    field = c1.selectbox("Sort by", options, key="runs_sort")
    descending = c2.toggle("Descending", value=True, key="runs_desc")
    trials = c3.toggle("Include trials", value=False, key="runs_trials",
                       help="A search's trials are child runs of its job's run.")
    limit = c4.selectbox("Rows per page", PAGE_SIZES, key="runs_limit")
    return RunQuery(experiments=chosen, statuses=statuses, filters=split_filters(text),
                    sort=("-" if descending else "") + field, top_level=not trials,
                    limit=int(limit))


def runs_frame(runs: list[RunPublic]) -> pd.DataFrame:
    """One row per run: who, status, times, every metric's latest value as a column, and
    the params in one cell."""
    metric_keys = sorted({k for r in runs for k in r.metrics})
    rows = []
    for r in runs:
        rows.append({"id": r.id, "experiment": r.experiment, "name": r.name,
                     "status": r.status.value, "source": r.source.value,
                     "started": when(r.start_time), "duration_s": r.duration_s,
                     **{k: r.metrics.get(k) for k in metric_keys},
                     "params": ", ".join(f"{k}={v}" for k, v in r.params.items())})
    return pd.DataFrame(rows, columns=["id", "experiment", "name", "status", "source",
                                       "started", "duration_s", *metric_keys, "params"])


def remember(runs: list[RunPublic]) -> None:
    labels = st.session_state.setdefault(LABELS, {})
    labels.update({r.id: label(r) for r in runs})


def _picked_in_table(ids: list[int]) -> None:
    """Rows ticked in the table become the compared runs (those chosen on other pages
    stay)."""
    rows = st.session_state[TABLE].selection.rows
    shown = set(ids)
    kept = [i for i in st.session_state.get(COMPARE, []) if i not in shown]
    st.session_state[COMPARE] = kept + [ids[r] for r in rows if r < len(ids)]


def runs_table(runs: list[RunPublic]) -> None:
    frame = runs_frame(runs)
    ids = frame["id"].tolist()
    st.dataframe(frame, hide_index=True, width="stretch", key=TABLE,
                 on_select=partial(_picked_in_table, ids), selection_mode="multi-row",
                 column_config={
                     "id": st.column_config.NumberColumn("id", format="%d"),
                     "duration_s": st.column_config.NumberColumn("duration (s)",
                                                                 format="%.1f")})


def linked_ids() -> list[int] | None:
    """The run ids of a shared link (`?runs=3,7`) a new session arrives with; None without
    one, or once the session has chosen runs itself."""
    if COMPARE in st.session_state or "runs" not in st.query_params:
        return None
    ids = []
    for part in st.query_params["runs"].split(","):
        try:
            ids.append(int(part))
        except ValueError:
            continue
    return ids


def follow_link(runs: list[RunPublic]) -> None:
    """Choose the linked runs that exist (`runs`, as `compare_runs` found them)."""
    remember(runs)
    st.session_state[COMPARE] = [r.id for r in runs]


def compare_picker() -> list[int]:
    """The runs to compare, by label: ticked in the table or picked here; the address
    (`?runs=…`) follows, so a comparison can be bookmarked or shared."""
    labels: dict[int, str] = st.session_state.get(LABELS, {})
    chosen = [i for i in st.session_state.get(COMPARE, []) if i in labels]
    st.session_state[COMPARE] = chosen
    picked = st.multiselect("Compare runs", list(labels), key=COMPARE,
                            format_func=lambda i: labels.get(i, str(i)),
                            placeholder="tick rows in the table, or pick runs here")
    if picked:
        st.query_params["runs"] = ",".join(map(str, picked))
    else:
        st.query_params.pop("runs", None)
    return picked


# -- the comparison --------------------------------------------------------------------------
def side_by_side(cmp: RunComparison, of: str, *, only_differing: bool) -> pd.DataFrame:
    """Keys as rows, one column per run (its label), and whether the runs differ."""
    heads = [label(r) for r in cmp.runs]
    rows = [{"key": row.key, **dict(zip(heads, row.values, strict=True)),
             "differs": row.differs}
            for row in getattr(cmp, of) if row.differs or not only_differing]
    return pd.DataFrame(rows, columns=["key", *heads, "differs"])


def primary_metric(run: RunDetailPublic) -> str | None:
    """The metric a run's history is about: a job's own metric (its `metric` param), else
    the metric with the longest history."""
    own = run.params.get("metric")
    if own in run.metric_history:
        return own
    if not run.metric_history:
        return None
    return max(sorted(run.metric_history), key=lambda k: len(run.metric_history[k]))


def history_frame(run: RunDetailPublic, key: str) -> pd.DataFrame:
    return pd.DataFrame([{"step": p.step, "value": p.value, "at": when(p.timestamp)}
                         for p in run.metric_history.get(key, [])],
                        columns=["step", "value", "at"])


def history_chart(frame: pd.DataFrame, *, title: str, key: str) -> alt.Chart:
    return alt.Chart(frame, title=title).mark_line(point=True).encode(
        x=alt.X("step:Q", title="step", axis=alt.Axis(tickMinStep=1, format="d")),
        y=alt.Y("value:Q", title=key, scale=alt.Scale(zero=False)),
        tooltip=["step:Q", alt.Tooltip("value:Q", format=".4g"), "at:N"],
    ).properties(height=220)


def _as_number(text: str) -> float | None:
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def parallel_frame(runs: list[RunPublic], score: str) -> pd.DataFrame:
    """The runs folded long for parallel coordinates: one row per (run, param) with the
    param scaled to [0, 1] over these runs (numbers by value, text by its sorted rank), and
    the score itself as the last axis. Params all runs share one value of are left out
    (a flat axis says nothing); a run without the param has no point on that axis."""
    scored = [r for r in runs if r.metrics.get(score) is not None]
    keys = sorted({k for r in scored for k in r.params})
    rows = []
    for key in keys:
        raw = {r.id: r.params.get(key) for r in scored if r.params.get(key) is not None}
        if len(set(raw.values())) < 2:
            continue
        numbers = {i: _as_number(v) for i, v in raw.items()}
        if all(n is not None for n in numbers.values()):
            low, high = min(numbers.values()), max(numbers.values())
            scaled = {i: (n - low) / (high - low) for i, n in numbers.items()}
        else:
            ranks = {v: k for k, v in enumerate(sorted(set(raw.values())))}
            scaled = {i: ranks[v] / (len(ranks) - 1) for i, v in raw.items()}
        rows += [{"run": label(r), "axis": key, "scaled": scaled[r.id], "value": raw[r.id],
                  "score": r.metrics[score]} for r in scored if r.id in raw]
    if rows and scored:
        values = [r.metrics[score] for r in scored]
        low, high = min(values), max(values)
        rows += [{"run": label(r), "axis": SCORE_AXIS,
                  "scaled": (r.metrics[score] - low) / (high - low) if high > low else 0.5,
                  "value": f"{r.metrics[score]:.4g}", "score": r.metrics[score]}
                 for r in scored]
    return pd.DataFrame(rows, columns=["run", "axis", "scaled", "value", "score"])


def parallel_chart(frame: pd.DataFrame, score: str, *, lower_is_better: bool) -> alt.Chart:
    """One line per run across the param axes to the score, coloured by the score (the
    better end of the scale is the darker one)."""
    axes = [a for a in dict.fromkeys(frame["axis"]) if a != SCORE_AXIS] + [SCORE_AXIS]
    scheme = alt.Scale(scheme="viridis", reverse=not lower_is_better)
    base = alt.Chart(frame).encode(
        x=alt.X("axis:N", sort=axes, title=None, axis=alt.Axis(labelAngle=-30)),
        y=alt.Y("scaled:Q", title="scaled to the runs' range",
                scale=alt.Scale(domain=[0, 1])),
        detail="run:N", color=alt.Color("score:Q", title=score, scale=scheme),
        tooltip=["run:N", "axis:N", "value:N", alt.Tooltip("score:Q", format=".4g")])
    return (base.mark_line(opacity=0.7) + base.mark_circle(size=40)).properties(height=300)


LOWER_IS_BETTER = {"log_loss", "rmse", "mae", "mse", "mape", "fit_time_s",
                   "predict_ms_per_1k"}


def history_grid(details: list[RunDetailPublic]) -> None:
    """A metric-history chart per run (its own metric by step: a search's best so far)."""
    cells = responsive_columns(min(len(details), 2), min_width=CHART_WIDTH, key="runs_history")
    for i, run in enumerate(details):
        key = primary_metric(run)
        with cells[i % len(cells)]:
            if key is None:
                st.caption(f"{label(run)}: no metrics logged.")
                continue
            frame = history_frame(run, key)
            st.altair_chart(history_chart(frame, title=f"{label(run)}: {key} by step", key=key),
                            width="stretch", key=f"runs_history_chart_{i}")
            if len(frame) == 1:
                st.caption("One point: this run logged the metric once.")
