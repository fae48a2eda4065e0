"""Monitor: traffic, latency, errors and accuracy per version over time; feedback labels
uploaded as a table; drift of a batch per feature with its test and effect size; alerts
with acknowledge."""

import io

import pandas as pd
import streamlit as st

from app.ui.common import empty_state, user_errors
from app.ui.deps import session
from app.ui.identity import current_actor
from app.ui.labels import column_help
from app.ui.layout import FIELD_WIDTH, apply_layout, responsive_columns
from app.ui.monitoring import alerts_frame, drift_chart, drift_frame, live_charts, step_text
from app.ui.permissions import act, gate
from core.data.datasets import list_datasets, load_frame
from core.deploy.enums import AlertState
from core.deploy.feedback_table import record_feedback_table, requests_to_label
from core.glossary import explain
from core.monitor.alerts import list_alerts
from core.monitor.live import live_drift, monitor_report
from core.monitor.offline import drift_report
from core.monitor.series import live_series
from core.monitor.states import Window
from core.registry import list_models
from core.store import utcnow
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

c1, c2 = responsive_columns(2, min_width=FIELD_WIDTH)  # the window choice wraps, never cut
names = [m.name for m in models]
wanted = st.query_params.get("model", "")  # deep link from Home / Deployments alerts
name = c1.selectbox("Model", names, index=names.index(wanted) if wanted in names else 0,
                    key="monitor_model")
st.query_params["model"] = name
window = c2.segmented_control("Window", list(Window), default=Window.H1) or Window.H1

st.subheader("Alerts")
with session() as s:
    open_alerts = list_alerts(name, session=s)
if open_alerts:
    n_open = sum(a.state == AlertState.OPEN for a in open_alerts)
    st.caption(f"{n_open} open, {len(open_alerts) - n_open} acknowledged (an acknowledged "
               "alert stays quiet until its condition clears).")
    st.dataframe(alerts_frame(open_alerts), hide_index=True, width="stretch")
    ack_id = st.selectbox("Alert", [a.id for a in open_alerts
                                    if a.state == AlertState.OPEN] or [None],
                          format_func=lambda i: "none open" if i is None else next(
                              f"{a.id}: {a.message}" for a in open_alerts if a.id == i))
    if ack_id is not None and act(st.button, "Acknowledge"):
        with user_errors(), session() as s:
            acknowledge(ack_id, actor=current_actor(), session=s)
            st.rerun()
else:
    st.success("No open alerts.", icon=":material/check_circle:")


@st.fragment(run_every=5)
def live_view() -> None:
    with session() as s:
        live = monitor_report(name, window, session=s)
        series = live_series(name, window, session=s)
    if not live.versions and not series.points:
        empty_state(f"No traffic in the last {window}. Send requests to the REST API or run the "
                    "traffic simulator.",
                    links=[("pages/deployments.py", "Run the traffic simulator")])
        return
    summary = pd.DataFrame([{"version": v, **{k: getattr(d, k) for k in (
        "requests", "ok", "failed", "rejected", "rate_per_s", "error_rate", "latency_p50_ms",
        "latency_p95_ms", "latency_p99_ms")}} for v, d in live.versions.items()])
    if live.accuracy and not summary.empty:
        summary = summary.merge(pd.DataFrame([{"version": v, **{f"live {k}" if k != "n" else
                                                                  "labelled": x
                                                                  for k, x in m.items()}}
                                              for v, m in live.accuracy.items()]),
                                on="version", how="left")
    st.dataframe(summary, hide_index=True, width="stretch")
    charts = live_charts(series)
    st.caption(f"One point per {step_text(series.step)} from {series.start:%Y-%m-%d %H:%M} to "
               f"{series.end:%H:%M} UTC. Latency is the upper edge of the histogram bucket "
               "holding the quantile. "
               + (f"Live {series.metric} is over the predictions of each step whose true "
                  "value was sent back; the dashed rule is the version's validation score."
                  if len(charts) > 3 else
                  "No true values sent back in this window: send some below to see live "
                  "accuracy."))
    items = list(charts.items())
    for row in range(0, len(items), 2):
        cols = responsive_columns(2)
        for col, (title, chart) in zip(cols, items[row:row + 2], strict=False):
            col.markdown(f"**{title}**")
            col.altair_chart(chart, width="stretch")


live_view()

st.subheader("Send true values (feedback)")
st.write("Upload a table with one row per answered request: its `request_id` (the predict "
         "response's X-Request-Id) and the true value in a column named `actual` (or the "
         "model's target). Live accuracy above is computed from these. A request labelled "
         "again takes the new value; if a request id appears twice, the last row counts.")
with session() as s:
    to_label = requests_to_label(name, utcnow() - Window(window).delta, session=s)
if not to_label.empty:
    st.download_button(f"Download the {len(to_label)} requests of the last {window} to label",
                       to_label.to_csv(index=False).encode(), f"{name}-to-label.csv",
                       "text/csv", icon=":material/download:")
with st.form("feedback", clear_on_submit=True):
    # editors only: labels drive performance alerts (and so rollbacks) and retraining data
    upload = st.file_uploader("Labelled requests (CSV or Parquet)", type=["csv", "parquet"],
                              **gate())
    send = act(st.form_submit_button, "Record true values")
if send:
    if upload is None:
        st.error("Choose a CSV or Parquet file first.", icon=":material/error:")
    else:
        try:
            data = upload.getvalue()
            table = (pd.read_parquet(io.BytesIO(data)) if upload.name.endswith(".parquet")
                     else pd.read_csv(io.BytesIO(data), dtype=str))
        except Exception as exc:  # noqa: BLE001 - any unreadable upload is the user's to fix
            st.error(f"Could not read {upload.name}: {exc}. Upload a CSV (comma-separated, "
                     "header row) or a Parquet file.", icon=":material/error:")
        else:
            with user_errors(), session() as s:
                result = record_feedback_table(name, table, session=s)
                st.session_state["feedback_result"] = (name, result.model_dump())
feedback = st.session_state.get("feedback_result")
if feedback and feedback[0] == name:
    r = feedback[1]
    versions = ", ".join(f"version {v}: {n}" for v, n in r["by_version"].items())
    (st.success if r["recorded"] else st.warning)(
        f"Recorded the true values of {r['recorded']} of {r['rows']} rows' requests "
        f"(from column {r['actual_column']!r})" + (f" — {versions}" if versions else "") + "."
        + (f" {r['relabelled']} already had a value and took the new one." if r["relabelled"]
           else ""), icon=":material/task_alt:")
    problems = []
    if r["unknown"]:
        problems.append(f"{r['unknown']} request id(s) are not predictions of {name} and were "
                        f"skipped (e.g. {', '.join(r['unknown_ids'])}).")
    if r["mismatched"]:
        problems.append(f"{r['mismatched']} request(s) scored several records and need as "
                        "many values, as a JSON list such as [1, 0] "
                        f"(e.g. {', '.join(r['mismatched_ids'])}).")
    if r["duplicates"]:
        problems.append(f"{r['duplicates']} row(s) repeat a request id further down: the last "
                        "row of each request id was used.")
    if r["blank"]:
        problems.append(f"{r['blank']} row(s) had no request id or no true value and were "
                        "skipped.")
    for p in problems:
        st.warning(p, icon=":material/warning:")

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
        st.dataframe(drift_frame([r.model_dump() for r in live.results]), hide_index=True,
                     width="stretch", column_config=DRIFT_HELP)

st.subheader("Drift of a batch against the training data")
with session() as s:
    datasets = list_datasets(session=s)
if datasets:
    with st.form("drift"):
        ds_id = st.selectbox("Batch", [d.id for d in datasets],
                             format_func=lambda i: next(f"{d.id}: {d.name}" for d in datasets
                                                        if d.id == i))
        alert = st.toggle("Raise DRIFT alerts from the result", value=False, **gate())
        run = st.form_submit_button("Check drift")
    if run:
        with user_errors(), session() as s:
            report = drift_report(name, load_frame(next(d for d in datasets if d.id == ds_id)),
                                  session=s)
            if alert and not gate()["disabled"]:
                raise_drift_alerts(report, session=s)
            st.session_state["drift_report"] = report.model_dump()  # plain data
    report = st.session_state.get("drift_report")
    if report and report["model"] == name:
        st.write(f"{len(report['drifted'])} of {report['features']} features drifted "
                 f"against version {report['version']}.")
        st.altair_chart(drift_chart(report["results"]), width="stretch")
        st.dataframe(drift_frame(report["results"]), hide_index=True, width="stretch",
                     column_config=DRIFT_HELP)
