"""Runs: every run across experiments in one table (filter by experiment, status, param or
metric; sort; paginate); the chosen runs compared: params and metrics side by side, each
run's metric history, and params against the score in parallel coordinates."""

import math

import streamlit as st

from app.ui import runs as ui
from app.ui.common import empty_state, user_errors
from app.ui.deps import session
from app.ui.layout import apply_layout
from core.errors import WorkbenchError
from core.tracking import compare_runs, get_run, list_experiments, list_runs

apply_layout()
st.title("Runs")
with session() as s:
    experiments = list_experiments(session=s)
    known = list_runs(session=s, limit=1000).runs  # names the sort can offer
if not experiments:
    empty_state("No runs yet: every training job is a run (its trials are child runs), and "
                "you can log your own with `core.tracking.start_run`.",
                links=[("pages/train.py", "Train a model")])
    st.stop()

linked = ui.linked_ids()
if linked is not None:  # a shared or bookmarked comparison (?runs=3,7)
    found, gone = [], []
    with session() as s:
        for run_id in dict.fromkeys(linked):
            try:
                found.append(get_run(run_id, session=s))
            except WorkbenchError:  # gone, or not a run id at all
                gone.append(run_id)
    ui.follow_link(found)
    if gone:
        st.warning(f"The link names runs that do not exist (any more): "
                   f"{', '.join(map(str, gone))}; the others are compared below.",
                   icon=":material/link_off:")

query = ui.filter_bar(experiments, known)
page_no = st.session_state.get("runs_page", 1)
page = None
try:
    with session() as s:
        page = list_runs(session=s, experiment=query.experiments or None,
                         status=query.statuses or None, filters=query.filters, sort=query.sort,
                         limit=query.limit, offset=(page_no - 1) * query.limit,
                         top_level=query.top_level)
        if not page.runs and page_no > 1:  # fewer runs than before: back to the first page
            st.session_state["runs_page"] = page_no = 1
            page = list_runs(session=s, experiment=query.experiments or None,
                             status=query.statuses or None, filters=query.filters,
                             sort=query.sort, limit=query.limit, top_level=query.top_level)
except WorkbenchError as exc:
    st.error(f"{exc.message} Nothing is listed until the filter is fixed.",
             icon=":material/error:")

if page is not None:
    if not page.runs:
        empty_state("No run matches these filters.")
    else:
        ui.remember(page.runs)
        pages = max(1, math.ceil(page.total / query.limit))
        first = page.offset + 1
        st.caption(f"Runs {first}–{page.offset + len(page.runs)} of {page.total}; tick rows "
                   "to compare them.")
        ui.runs_table(page.runs)
        if pages > 1:
            st.number_input("Page", min_value=1, max_value=pages, step=1, key="runs_page")

st.subheader("Compare")
chosen = ui.compare_picker()
if not chosen:
    st.info("Choose two or more runs to compare: tick their rows in the table, or pick them "
            "above.", icon=":material/info:")
    st.stop()
with user_errors(), session() as s:
    cmp = compare_runs(chosen, session=s)
    details = [get_run(i, session=s) for i in chosen]
if len(chosen) == 1:
    st.caption("One run: its params and metrics. Choose another to see them side by side.")
only = st.toggle("Only what differs", value=False, key="runs_only_differing",
                 disabled=len(chosen) < 2)
st.markdown("**Metrics** (latest values)")
st.dataframe(ui.side_by_side(cmp, "metrics", only_differing=only), hide_index=True,
             width="stretch")
st.markdown("**Params**")
st.dataframe(ui.side_by_side(cmp, "params", only_differing=only), hide_index=True,
             width="stretch")

st.subheader("Metric history")
ui.history_grid(details)

st.subheader("Params against the score")
sources = {f"trials of {ui.label(d)}": d.id for d in details if d.child_run_ids}
sources["the compared runs"] = None
source = st.selectbox("Runs drawn", list(sources), key="runs_parallel_source",
                      help="A search's trials are its child runs: one line per trial.")
with user_errors(), session() as s:
    drawn = cmp.runs if sources[source] is None else list_runs(
        session=s, parent_run_id=sources[source], limit=1000).runs
    parent = next((d for d in details if d.id == sources[source]), None)
scores = sorted({k for r in drawn for k in r.metrics})
if not scores:
    empty_state("These runs logged no metric to colour them by.")
    st.stop()
own = (parent or details[0]).params.get("metric")
score = st.selectbox("Score", scores, index=scores.index(own) if own in scores else 0,
                     key=f"runs_parallel_score:{source}")
frame = ui.parallel_frame(drawn, score)
if frame.empty:
    empty_state(f"No param varies across these {len(drawn)} runs with a {score}: nothing to "
                "draw against the score.")
else:
    st.altair_chart(ui.parallel_chart(frame, score,
                                      lower_is_better=score in ui.LOWER_IS_BETTER),
                    width="stretch", key="runs_parallel")
    st.caption("Each line is a run: its params scaled to the range these runs span (numbers "
               "by value, text in sorted order), ending at its score. A run without a param "
               "has no point on that axis.")
