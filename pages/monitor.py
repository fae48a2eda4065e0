"""Monitor: traffic, latency, errors and accuracy per version over time; drift of a batch
per feature with its test and effect size; alerts with acknowledge."""

import altair as alt
import pandas as pd
import streamlit as st

from app.ui.common import empty_state, user_errors
from app.ui.deps import session
from app.ui.labels import column_help
from app.ui.layout import apply_layout, responsive_columns
from app.ui.times import time_tooltip, time_x, times_as_text, utc_column
from core.data.datasets import list_datasets, load_frame
from core.deploy.enums import AlertState
from core.glossary import explain
from core.monitor.alerts import list_alerts
from core.monitor.live import live_drift, monitor_report
from core.monitor.offline import drift_report
from core.monitor.states import Window
from core.registry import list_models
from core.usecases.alert_actions import acknowledge, raise_drift_alerts

apply_layout()
st.title("Monitor")
# plain-words help on the drift tables' jargon (tests: ks, chi2, jensen_shannon, wasserstein)
DRIFT_HELP = column_help(["p_value", "effect_size", "psi"],
                         test="The test used: " + " ".join(
                             explain(t) or t for t in ("ks", "chi2", "jensen_shannon",
                                                        "wasserstein")))
with session() as s:
    models = list_models(session=s)
if not models:
    empty_state("Nothing to monitor yet: train and deploy a model first.",
                links=[("pages/train.py", "Train a model"),
                       ("pages/deployments.py", "Deploy a version")])
    st.stop()

c1, c2 = st.columns([2, 1])
name = c1.selectbox("Model", [m.name for m in models])
window = c2.segmented_control("Window", list(Window), default=Window.H1) or Window.H1

st.subheader("Alerts")
with session() as s:
    open_alerts = list_alerts(name, session=s)
if open_alerts:
    st.dataframe(times_as_text(pd.DataFrame([a.model_dump(mode="json") for a in open_alerts]),
                               ["opened_at"])[[
        "id", "version", "kind", "feature", "severity", "state", "message", "action",
        "opened_at"]], hide_index=True, width="stretch")
    ack_id = st.selectbox("Alert", [a.id for a in open_alerts
                                    if a.state == AlertState.OPEN] or [None])
    if ack_id is not None and st.button("Acknowledge"):
        with user_errors(), session() as s:
            acknowledge(ack_id, actor="ui", session=s)
            st.rerun()
else:
    st.success("No open alerts.", icon=":material/check_circle:")


@st.fragment(run_every=5)
def live_view() -> None:
    with session() as s:
        live = monitor_report(name, window, session=s)
    if not live.versions:
        empty_state(f"No traffic in the last {window}. Send requests to the REST API or run the "
                    "traffic simulator.",
                    links=[("pages/deployments.py", "Run the traffic simulator")])
        return
    summary = pd.DataFrame([{"version": v, **{k: getattr(d, k) for k in (
        "requests", "ok", "failed", "rejected", "rate_per_s", "error_rate", "latency_p50_ms",
        "latency_p95_ms", "latency_p99_ms")}} for v, d in live.versions.items()])
    if live.accuracy:
        summary = summary.merge(pd.DataFrame([{"version": v, **m}
                                              for v, m in live.accuracy.items()]),
                                on="version", how="left")
    st.dataframe(summary, hide_index=True, width="stretch")
    series = pd.DataFrame([p.model_dump() for p in live.series])
    series = utc_column(series, "at")  # instants in UTC, drawn on a UTC axis
    series["version"] = series["version"].astype(str)
    c1, c2, c3 = responsive_columns(3)
    for col, field, title in ((c1, "requests", "requests"),
                              (c2, "latency_mean_ms", "mean latency (ms)"),
                              (c3, "error_rate", "error rate")):
        col.altair_chart(alt.Chart(series).mark_line(point=True).encode(
            x=time_x("at"), y=alt.Y(f"{field}:Q", title=title),
            color="version:N", tooltip=[time_tooltip("at"), "version:N", f"{field}:Q"]
        ).properties(height=220),
            width="stretch")


live_view()

st.subheader("Drift of recent traffic")
with user_errors(), session() as s:
    live = live_drift(name, window, session=s)
    if live.rows == 0:
        empty_state(f"No sampled requests in the last {window}.")
    else:
        flagged = ", ".join(live.drifted) or "none"
        extra = [f"{k}: {'drifted' if v.drifted else 'stable'} ({v.test})"
                 for k, v in (("predictions", live.prediction), ("labels", live.label)) if v]
        st.write(f"{live.rows} sampled rows scored by version {live.version}; drifted "
                 f"features: **{flagged}**. " + "; ".join(extra))
        st.dataframe(pd.DataFrame([r.model_dump() for r in live.results]), hide_index=True,
                     width="stretch", column_config=DRIFT_HELP)

st.subheader("Drift of a batch against the training data")
with session() as s:
    datasets = list_datasets(session=s)
if datasets:
    with st.form("drift"):
        ds_id = st.selectbox("Batch", [d.id for d in datasets],
                             format_func=lambda i: next(f"{d.id}: {d.name}" for d in datasets
                                                        if d.id == i))
        alert = st.toggle("Raise DRIFT alerts from the result", value=False)
        run = st.form_submit_button("Check drift")
    if run:
        with user_errors(), session() as s:
            report = drift_report(name, load_frame(next(d for d in datasets if d.id == ds_id)),
                                  session=s)
            if alert:
                raise_drift_alerts(report, session=s)
            st.session_state["drift_report"] = report.model_dump()  # plain data
    report = st.session_state.get("drift_report")
    if report and report["model"] == name:
        st.write(f"{len(report['drifted'])} of {report['features']} features drifted "
                 f"against version {report['version']}.")
        results = pd.DataFrame(report["results"])
        st.altair_chart(alt.Chart(results).mark_bar().encode(
            x=alt.X("effect_size:Q", title="effect size"), y=alt.Y("feature:N", sort="-x"),
            color=alt.Color("drifted:N", scale=alt.Scale(range=["#9ab", "#d33"])),
            tooltip=["feature:N", "test:N", "statistic:Q", "p_value:Q", "effect_size:Q",
                     "psi:Q"]
        ).properties(height=max(120, 18 * len(results))), width="stretch")
        st.dataframe(results, hide_index=True, width="stretch", column_config=DRIFT_HELP)
