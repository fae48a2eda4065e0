"""Home: what exists in this workbench, and the first steps for a new user."""

import pandas as pd
import streamlit as st

from app.ui.common import empty_state
from core.data.datasets import list_datasets
from core.jobs.views import read_jobs
from core.registry import list_models

st.title("ML Workbench")
models, datasets, jobs = list_models(), list_datasets(), read_jobs(limit=10, by="ui")

cols = st.columns(3)
cols[0].metric("Models", len(models))
cols[1].metric("Datasets", len(datasets))
cols[2].metric("Jobs", len(jobs))

st.subheader("Models")
if models:
    st.dataframe(pd.DataFrame(models)[["name", "versions", "latest_version", "task", "metric",
                                       "latest_score", "aliases"]],
                 hide_index=True, width="stretch")
else:
    empty_state("No models yet. Your first model in 3 steps: 1. open **Data** and upload a "
                "table or pick a sample; 2. train it: `workbench automl data/breast_cancer.csv "
                "--target diagnosis`; 3. see it in **Registry** and point `production` at it.")

st.subheader("Recent jobs")
if jobs:
    st.dataframe(pd.DataFrame([{"id": j.id, "state": j.state, "model": j.model_name,
                                "trials": j.progress.get("trials_done"),
                                "best": j.progress.get("best_score"),
                                "created": j.created_at} for j in jobs]),
                 hide_index=True, width="stretch")
else:
    empty_state("No training jobs yet.")
