"""Home: what exists in this workbench, and the first steps for a new user."""

import pandas as pd
import streamlit as st

from app.ui.common import empty_state
from app.ui.deps import session
from app.ui.jobs import registered_score
from app.ui.labels import KIND_LABEL
from app.ui.layout import CARD_WIDTH, apply_layout, responsive_columns
from app.ui.monitoring import alerts_panel
from app.ui.readable import aliases_text
from app.ui.times import when
from core.data.datasets import list_datasets
from core.deploy.enums import AlertState
from core.jobs.views import read_jobs
from core.monitor.alerts import list_alerts
from core.registry import list_models

apply_layout()
st.title("ML Workbench")
with session() as s:
    models, datasets = list_models(session=s), list_datasets(session=s)
    jobs = read_jobs(session=s, limit=10, by="ui")
    alerts = list_alerts(states=(AlertState.OPEN,), session=s)

cols = responsive_columns(4, min_width=CARD_WIDTH)
cols[0].metric("Models", len(models))
cols[1].metric("Datasets", len(datasets))
cols[2].metric("Jobs", len(jobs))
cols[3].metric("Open alerts", len(alerts), help="Alerts raised by the monitor (errors, "
               "latency, drift, live accuracy) that nobody has acknowledged yet.")
if alerts:
    st.subheader("Open alerts")
    alerts_panel(alerts)

st.subheader("Models")
if models:
    st.dataframe(pd.DataFrame([{**m.model_dump(mode="json"), "aliases": aliases_text(m.aliases)}
                               for m in models])[
                     ["name", "versions", "latest_version", "task", "metric", "latest_score",
                      "aliases"]],
                 hide_index=True, width="stretch", column_config={
                     "latest_score": st.column_config.NumberColumn(
                         "latest version's score", format="%.4f",
                         help="The score the registry holds for the latest version, in its "
                              "metric: a CV score (mean over folds), or out-of-fold for an "
                              "ensemble. The metric's direction is in the Leaderboard's help."),
                 })
else:
    empty_state("No models yet. Your first model in 3 steps: 1. upload a table or pick a "
                "sample; 2. train a model on it; 3. compare the trials and point `production` "
                "at the version you want.",
                links=[("pages/data.py", "Upload a table"), ("pages/train.py", "Train a model")])

st.subheader("Recent jobs")
if jobs:
    rows = []
    for j in jobs:
        with session() as s:
            version, score, kind = registered_score(j, session=s)
        rows.append({"id": j.id, "state": j.state, "model": j.model,
                     "trials": j.progress.get("trials_done"), "metric": j.metric,
                     "best single trial (CV)": j.progress.get("best_score"),
                     "registered version": version, "registered score": score,
                     "scored as": KIND_LABEL.get(kind, "") if kind else None,
                     "created": when(j.created_at)})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
        "best single trial (CV)": st.column_config.NumberColumn(
            format="%.4f", help="The best single pipeline's CV score (mean over folds) while "
                                "the search ran."),
        "registered score": st.column_config.NumberColumn(
            format="%.4f", help="The score of the version the job registered: what the "
                                "registry holds. For an ensemble it is out-of-fold, and differs "
                                "from the best single trial's.")})
else:
    empty_state("No training jobs yet.", links=[("pages/train.py", "Train a model")])
