"""Data: upload a table or pick a sample, see its profile and the detected problem type."""

import pandas as pd
import streamlit as st

from app.ui import charts
from app.ui.choices import (
    remember_date_use,
    remember_target,
    remembered_date_use,
    remembered_target,
)
from app.ui.common import empty_state, pick_dataset, user_errors
from app.ui.datasets import delete_box
from app.ui.deps import session
from app.ui.identity import current_actor
from app.ui.layout import apply_layout
from app.ui.links import page_link
from app.ui.permissions import act, gate
from core.automl.dates import DateUse, date_columns, date_warning, preferred_time_column
from core.data.datasets import ingest_bytes, list_datasets, load_frame
from core.data.profile import check_target, detect_problem_type
from core.glossary import explain
from core.samples import samples_dir
from core.settings import get_settings

SAMPLES = samples_dir()

apply_layout()
st.title("Data")
limit = get_settings().max_upload_mb
upload = st.file_uploader(f"Upload a CSV or Parquet table (up to {limit:.0f} MB)",
                          type=["csv", "parquet"], **gate())
decimal = st.radio("Decimal mark in CSV numbers", ["auto", ".", ","], horizontal=True,
                   help="auto reads `17,99` as a number when columns are separated by `;`")
if upload is not None and not gate()["disabled"]:
    with user_errors(), session() as s:
        stored = ingest_bytes(upload.getvalue(), upload.name, session=s, decimal=decimal,
                              actor=current_actor())
        st.session_state["dataset_id"] = stored.dataset.id
        st.success(f"Stored **{stored.dataset.name}** ({stored.dataset.n_rows} rows)"
                   if stored.created else f"Already stored as dataset {stored.dataset.id}.")

samples = sorted(p.name for p in SAMPLES.glob("*.csv"))
NO_SAMPLE = "—"
pick = st.selectbox("…or use a sample", [NO_SAMPLE, *samples])
if pick != NO_SAMPLE and act(st.button, "Load sample"):
    with user_errors(), session() as s:
        stored = ingest_bytes((SAMPLES / pick).read_bytes(), pick, session=s,
                              actor=current_actor())
        st.session_state["dataset_id"] = stored.dataset.id

with session() as s:
    datasets = list_datasets(session=s)
if not datasets:
    empty_state("No datasets yet: upload a table above or load a sample.")
    st.stop()

ds = pick_dataset(datasets)
with user_errors():
    frame = load_frame(ds)
    for warning in ds.warnings:
        st.warning(warning)
    dates = date_columns(ds.columns)
    if dates:
        st.warning(date_warning(dates), icon=":material/calendar_month:")
    st.caption(f"Fingerprint `{ds.fingerprint[:16]}…` · {ds.size_bytes / 1024:.0f} KB stored",
               help=explain("fingerprint"))
    st.dataframe(frame.head(200), width="stretch")

    st.subheader("Columns")
    profile = pd.DataFrame(ds.columns)
    profile["missing %"] = (100 * profile["missing"] / max(ds.n_rows, 1)).round(1)
    st.dataframe(profile[["name", "kind", "dtype", "missing %", "unique", "reason"]],
                 hide_index=True, width="stretch")

    column = st.selectbox("Distribution of", list(frame.columns))
    kind = next((c.get("kind") for c in ds.columns if c.get("name") == column), None)
    st.altair_chart(charts.distribution(frame[column], str(column), kind), width="stretch")

    st.subheader("Target")
    columns = list(frame.columns)
    if st.session_state.get("data_dataset") != ds.id or \
            st.session_state.get("data_target") not in columns:
        st.session_state["data_target"] = remembered_target(ds.id, columns)
    st.session_state["data_dataset"] = ds.id
    target = st.selectbox("Column to predict", columns, key="data_target")
    remember_target(ds.id, target)  # the Train page starts from it
    problem = detect_problem_type(check_target(frame, target))
    st.write(f"Detected **{problem.task}**: {problem.reason}.")
    if dates:
        use = st.radio("How training uses the dates", [u.value for u in DateUse],
                       index=[u.value for u in DateUse].index(
                           remembered_date_use(ds.id, ds.columns).value),
                       format_func=lambda u: DateUse(u).describe(preferred_time_column(dates)),
                       key=f"data_dates_{ds.id}",
                       help="The Train page starts from this choice for this table.")
        remember_date_use(ds.id, use)
    page_link("pages/train.py", f"Train a model to predict {target}",
              query_params={"dataset": str(ds.id), "target": target},
              icon=":material/model_training:")

st.subheader("Delete this dataset")
delete_box(ds)
