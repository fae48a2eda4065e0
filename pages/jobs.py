"""Jobs: the ledger with progress, logs and controls, and retraining schedules."""

import pandas as pd
import streamlit as st

from app.ui.common import empty_state, user_errors
from app.ui.deps import session
from app.ui.identity import current_actor
from app.ui.jobs import has_results, next_steps, progress_text, registered_score
from app.ui.layout import apply_layout
from app.ui.permissions import act
from app.ui.times import when
from core.jobs import ledger
from core.jobs.schedules import create_schedule, delete_schedule, list_schedules, set_paused
from core.jobs.states import JobState
from core.jobs.views import read_job_detail, read_jobs
from core.jobs.worker import live_workers
from core.registry import list_models

apply_layout()
st.title("Jobs")
with session() as s:
    st.caption(f"{len(live_workers(session=s))} live worker(s)")


@st.fragment(run_every=2)
def ledger_view() -> None:
    with session() as s:
        jobs = read_jobs(session=s, limit=100, by="ui")  # a dead worker's shows FAILED
        if not jobs:
            empty_state("No jobs yet: start a training first.",
                        links=[("pages/train.py", "Train a model")])
            return
        st.dataframe(pd.DataFrame([{
            "id": j.id, "state": j.state, "model": j.model, "trigger": j.trigger,
            "progress": progress_text(j, session=s), "cpu s": round(j.cpu_seconds, 1),
            "peak MB": round(j.peak_memory_mb), "created": when(j.created_at), "error": j.error}
            for j in jobs]), hide_index=True, width="stretch")


ledger_view()


@st.fragment(run_every=2)
def job_controls() -> None:
    """The chosen job's controls, history and log, re-read every tick: buttons enabled for
    the state the job is in now, not the one it had when the page opened."""
    with session() as s:
        jobs = ledger.list_jobs(session=s, limit=100)
        if not jobs:
            return
        job_id = st.selectbox("Job", [j.id for j in jobs], key="jobs_pick")
        job = read_job_detail(job_id, session=s, by="ui")
        log_text = ledger.get_job(job_id, session=s).log
        st.caption(progress_text(job, session=s))
    state = job.state
    c1, c2, c3 = st.columns(3)
    paused = state == JobState.PAUSED or job.pause_requested
    with user_errors(), session() as s:
        if act(c1.button, "Cancel", disabled=state.is_terminal, key="job_cancel"):
            ledger.request_cancel(job_id, session=s, actor=current_actor())
            st.toast(f"Cancel requested for job {job_id}")
            st.rerun(scope="fragment")
        if act(c2.button, "Pause", disabled=state != JobState.RUNNING or paused,
               key="job_pause"):
            ledger.request_pause(job_id, True, session=s, actor=current_actor())
            st.toast(f"Pause requested for job {job_id}")
            st.rerun(scope="fragment")
        if act(c3.button, "Resume", disabled=not paused or state.is_terminal,
               key="job_resume"):
            ledger.request_pause(job_id, False, session=s, actor=current_actor())
            st.toast(f"Resume requested for job {job_id}")
            st.rerun(scope="fragment")
    with st.expander("State changes and log"):
        st.dataframe(pd.DataFrame([{"at": when(t.at, seconds=True), "from": t.from_state,
                                    "to": t.to_state, "reason": t.reason}
                                   for t in job.transitions]),
                     hide_index=True, width="stretch")
        st.code(log_text or "(no log yet)", language=None)
    if job.gate:
        st.info(f"Promotion gate: {job.gate.get('reason')}", icon=":material/rule:")
    if job.state == JobState.COMPLETED:
        with session() as s:
            version, _, _ = registered_score(job, session=s)
        next_steps(job, version)
    elif has_results(job):
        next_steps(job, None)


job_controls()



def confirm_schedule_delete(sid: int, schedules: dict) -> None:
    """Delete only after "Confirm delete"; Cancel (or choosing another schedule) backs out."""
    if st.session_state.get("schedule_delete_pending") != sid:
        return
    sched = schedules[sid]
    st.warning(f"Delete schedule {sid} (retrains {sched.model_name} at `{sched.cron}` UTC)? "
               "It will not run again; jobs it already started are kept.",
               icon=":material/warning:")
    c1, c2 = st.columns(2)
    if act(c1.button, "Confirm delete", key="schedule_delete_confirm", type="primary"):
        st.session_state.pop("schedule_delete_pending", None)
        with user_errors(), session() as s:
            delete_schedule(sid, session=s, actor=current_actor())
            st.toast(f"Schedule {sid} deleted")
            st.rerun()
    if c2.button("Cancel", key="schedule_delete_cancel"):
        st.session_state.pop("schedule_delete_pending", None)
        st.rerun()


st.subheader("Retraining schedules")
with session() as s:
    schedules = list_schedules(session=s)
if schedules:
    st.dataframe(pd.DataFrame([{"id": s.id, "model": s.model_name, "cron (UTC)": s.cron,
                                "paused": s.paused, "auto canary": s.auto_canary,
                                "next run": when(s.next_run_at)} for s in schedules]),
                 hide_index=True, width="stretch")
    c1, c2, c3, c4 = st.columns(4)
    sid = c1.selectbox("Schedule", [s.id for s in schedules])
    with user_errors(), session() as s:
        if act(c2.button, "Pause schedule"):
            set_paused(sid, True, session=s, actor=current_actor())
            st.rerun()
        if act(c3.button, "Resume schedule"):
            set_paused(sid, False, session=s, actor=current_actor())
            st.rerun()
        if act(c4.button, "Delete schedule"):
            st.session_state["schedule_delete_pending"] = sid  # asks first: see below
            st.rerun()
    confirm_schedule_delete(sid, {s.id: s for s in schedules})
else:
    empty_state("No schedules. Add one below to retrain a model on its latest data.")

with session() as s:
    models = [m.name for m in list_models(session=s)]
if models:
    with st.form("schedule"):
        c1, c2 = st.columns(2)
        model = c1.selectbox("Model", models)
        cadence = c2.text_input("When (HH:MM daily UTC, or cron)", value="02:00")
        c3, c4 = st.columns(2)
        margin = c3.number_input("Must beat production by", value=0.0, min_value=0.0,
                                 format="%.4f")
        canary = c4.toggle("Start a canary when it passes", value=False)
        if act(st.form_submit_button, "Add schedule"):
            with user_errors(), session() as s:
                sched = create_schedule(model, cadence, session=s, auto_canary=canary,
                                        gate_min_abs=margin, actor=current_actor())
                st.success(f"Schedule {sched.id}: next run "
                           f"{when(sched.next_run_at)}")
