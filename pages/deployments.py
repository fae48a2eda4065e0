"""Deployments: stable vs candidate, rollout steps, promote, rollback (with confirmation),
open alerts, the A/B verdict on labelled feedback, the traffic split since the last change,
and a simulator that replays a table through the real router."""

import altair as alt
import pandas as pd
import streamlit as st

from app.ui.common import empty_state, user_errors
from app.ui.deps import database, session
from app.ui.identity import current_actor
from app.ui.layout import CARD_WIDTH, apply_layout, responsive_columns
from app.ui.monitoring import alerts_panel
from app.ui.permissions import act
from app.ui.readable import deployment_history_frame
from app.ui.verdict import verdict_panel
from core.data.datasets import list_datasets, load_frame
from core.deploy.deployments import deploy, get_state, history, promote, rollback, set_percent
from core.deploy.enums import DeploymentMode, Runtime
from core.deploy.feedback import model_scorecard
from core.deploy.simulator import simulate
from core.deploy.split import traffic_split
from core.monitor.alerts import list_alerts
from core.registry import list_models, list_versions

apply_layout()
st.title("Deployments")
with session() as s:
    models = list_models(session=s)
if not models:
    empty_state("Nothing to deploy yet: train a model first.",
                links=[("pages/train.py", "Train a model")])
    st.stop()

name = st.selectbox("Model", [m.name for m in models])
with session() as s:
    version_docs = list_versions(name, session=s)
    state = get_state(name, session=s)
versions = [v.version for v in version_docs]

c1, c2, c3, c4 = responsive_columns(4, min_width=CARD_WIDTH)
c1.metric("Stable (production)", state.stable or "–")
c2.metric("Candidate", state.candidate or "–")
c3.metric("Candidate traffic", f"{state.percent:g}%" if state.candidate else "–")
c4.metric("Mode", state.mode)
if state.stable:
    st.caption("Runtime: " + " · ".join(
        f"{role} {v}: {state.runtime_of(v)}" for role, v in (("stable", state.stable),
                                                            ("candidate", state.candidate)) if v)
        + " (auto: the faster of python and onnx; onnx needs a passed ONNX export)")
if state.candidate:
    steps_text = ", ".join(f"{s:g}%" for s in state.steps)
    st.progress(state.percent / 100, text=f"rollout steps {steps_text}")
with session() as s:
    alerts = list_alerts(name, session=s)
alerts_panel(alerts, model=name)

with st.form("deploy"):
    st.write("Deploy a version" + (" (it becomes production: none yet)" if not state.stable
                                   else " as the candidate"))
    c1, c2, c3 = st.columns(3)
    version = c1.selectbox("Version", versions[::-1])
    percent = c2.select_slider("Traffic %", options=[0, 1, 5, 10, 25, 50, 75, 100], value=10)
    mode = c3.radio("Mode", list(DeploymentMode), horizontal=True)
    runtime = st.radio("Runtime", list(Runtime), horizontal=True,
                       help="onnx needs `workbench export NAME:VERSION --format onnx` first")
    if act(st.form_submit_button, "Deploy", type="primary"):
        with user_errors(), session() as s:
            deploy(name, int(version), float(percent), session=s, mode=mode, actor=current_actor(),
                   runtime=runtime)
            st.rerun()

if state.candidate:
    c1, c2, c3 = st.columns(3)
    steps = [s for s in state.steps if s > state.percent]
    # Each action names the candidate shown: if it changed meanwhile, 409 instead of acting on
    # another version.
    with user_errors(), session() as s:
        if steps and act(c1.button, f"Next step: {steps[0]:g}%"):
            set_percent(name, steps[0], session=s, actor=current_actor(), reason="rollout step",
                        expect_candidate=state.candidate)
            st.rerun()
        if act(c2.button, "Promote candidate"):
            promote(name, session=s, actor=current_actor(), reason="promoted from the UI",
                    expect_candidate=state.candidate)
            st.rerun()
        if act(c3.button, "Rollback", type="primary"):
            st.session_state["confirm_rollback"] = (name, state.candidate)
    confirming = st.session_state.get("confirm_rollback")
    if confirming and confirming[0] == name:
        st.warning(f"Send 100% of traffic back to version {state.stable} and remove candidate "
                   f"{confirming[1]}? It stays loaded for analysis.")
        ok, cancel = st.columns(2)
        if act(ok.button, "Confirm rollback"):
            st.session_state.pop("confirm_rollback", None)
            with user_errors(), session() as s:
                rollback(name, session=s, actor=current_actor(), reason="kill switch in the UI",
                         expect_candidate=confirming[1])
                st.rerun()
        if cancel.button("Cancel"):
            st.session_state.pop("confirm_rollback", None)
            st.rerun()

st.subheader("A/B verdict")
with user_errors(), session() as s:
    verdict_panel(model_scorecard(name, session=s), model=name)

st.subheader("Live traffic split")
with session() as s:
    split = traffic_split(name, session=s)
since = f"{split.since:%Y-%m-%d %H:%M:%S} UTC"
CHANGE = {"initial": "first deployment", "candidate": "new candidate", "percent": "rollout step",
          "promote": "promotion", "rollback": "rollback"}
window_text = (f"since the last change ({CHANGE.get(split.change, split.change)} at {since})"
               if split.change
               else f"in the last {split.recent_minutes:g} minutes (since {since})")
traffic = pd.DataFrame([v.model_dump() for v in split.versions])
if not traffic.empty and traffic["requests"].sum() > 0:
    st.caption(f"Requests {window_text}, per version: the current rule at work"
               + (f" (candidate set to {split.percent:g}%)." if state.candidate else ".")
               + " Traffic before the last change is not counted.")
    st.dataframe(traffic, hide_index=True, width="stretch", column_config={
        "share": st.column_config.ProgressColumn("share", min_value=0, max_value=1,
                                                 format="percent")})
    traffic["label"] = traffic["version"].astype(str) + " (" + traffic["role"] + ")"
    st.altair_chart(alt.Chart(traffic).mark_bar().encode(
        x=alt.X("share:Q", title="share of requests", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1])),
        y=alt.Y("label:N", title=None), color=alt.Color("role:N"),
        tooltip=["version:N", "role:N", "requests:Q", alt.Tooltip("share:Q", format=".1%"),
                 alt.Tooltip("error_rate:Q", format=".1%"), "latency_p99_ms:Q"]),
        width="stretch")
else:
    empty_state(f"No traffic {window_text}. Send requests to the REST API or run the "
                "simulator below.")

st.subheader("Traffic simulator")
with session() as s:
    datasets = list_datasets(session=s)
if datasets:
    with st.form("simulate"):
        c1, c2 = st.columns(2)
        ids = [d.id for d in datasets]
        own = next((v.dataset_id for v in version_docs
                    if v.version == (state.stable or versions[-1])), None)
        ds_id = c1.selectbox("Replay rows of", ids, index=ids.index(own) if own in ids else 0,
                             format_func=lambda i: next(d.name for d in datasets if d.id == i),
                             help="Defaults to the data the stable version was trained on.")
        n = c2.slider("Requests", 100, 5000, 1000, step=100)
        if st.form_submit_button("Run simulator"):
            with user_errors(), st.spinner("Replaying through the router…"):
                result = simulate(name, load_frame(next(d for d in datasets if d.id == ds_id)),
                                  n, db=database())
                st.session_state["simulation"] = result.model_dump()  # plain data
                st.rerun()  # refresh the live-traffic section above with what was just sent
result = st.session_state.get("simulation")
if result and result["model"] == name:
    share = pd.DataFrame([{"version": v, "requests": c} for v, c in result["by_version"].items()])
    st.altair_chart(alt.Chart(share).mark_bar().encode(x="requests:Q", y="version:N",
                                                       color="version:N"), width="stretch")
    st.caption(f"{result['requests']} requests from {result['users']} sticky users, "
               f"{result['errors']} errors; candidate share {result['candidate_share']:.1%} at "
               f"{result['percent']:g}% (each user stays on one version)")

st.subheader("History")
with session() as s:
    events = history(name, session=s)
if events:
    st.dataframe(deployment_history_frame(events), hide_index=True,
                 width="stretch")
else:
    empty_state("No deployment changes yet.")
