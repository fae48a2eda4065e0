"""Predict: score an uploaded table or one hand-filled row with any version of a model."""

import altair as alt
import pandas as pd
import streamlit as st

from app.ui.common import empty_state, user_errors
from app.ui.deps import session
from app.ui.layout import FIELD_WIDTH, apply_layout, responsive_columns
from app.ui.metrics_text import interval_coverage_choice
from core.data.export import safe_csv_bytes
from core.data.ingest import read_bytes
from core.enums import Task
from core.features.inputs import market_spec
from core.predict import beside_input, predict_with
from core.registry import PRODUCTION, list_models, list_versions, load_pipeline
from core.settings import get_settings
from core.what_if import FieldKind, what_if_fields

MAX_SHOWN_ROWS = 10_000  # the download always holds every row

apply_layout()
st.title("Predict")
with session() as s:
    models = list_models(session=s)
if not models:
    empty_state("No models yet: train one first, then score new rows with it here.",
                links=[("pages/train.py", "Train a model")])
    st.stop()

c1, c2 = responsive_columns(2, min_width=FIELD_WIDTH)
name = c1.selectbox("Model", [m.name for m in models], key="predict_model")
with session() as s:
    versions = list_versions(name, session=s)
by_number = {v.version: v for v in versions}
production = next((v.version for v in versions if PRODUCTION in v.aliases), None)
active = [v.version for v in versions if not v.archived]
default = production or (max(active) if active else versions[-1].version)


def _label(choice: int | None) -> str:
    if choice is None:
        return f"{'production' if production else 'latest'} (version {default})"
    v = by_number[choice]
    tags = ", ".join(v.aliases) + (" archived" if v.archived else "")
    return f"version {choice}" + (f" ({tags.strip(', ')})" if tags else "")


choice = c2.selectbox("Version", [None, *sorted(by_number, reverse=True)], format_func=_label,
                      key=f"predict_version:{name}")
number = default if choice is None else choice
ref = f"{name}:{number}"
loaded = None
with user_errors(), session() as s:  # a library mismatch or a failed check, said plainly
    loaded = load_pipeline(ref, session=s)
if loaded is None:
    st.stop()
_, mv, pipeline = loaded
st.caption(f"Scoring with **{ref}** ({mv.estimator}, {mv.task}, target `{mv.target}`).")
coverage = interval_coverage_choice(mv, key=f"predict_coverage:{ref}")

st.subheader("Score a table")
limit = get_settings().max_upload_mb
upload = st.file_uploader(f"Upload rows to predict, CSV or Parquet (up to {limit:.0f} MB)",
                          type=["csv", "parquet"], key="predict_upload")
if upload is not None:
    with user_errors():
        read = read_bytes(upload.getvalue(), upload.name,
                          max_bytes=get_settings().max_upload_bytes, for_training=False)
        for note in read.notes:
            st.caption(note)
        table = beside_input(predict_with(pipeline, mv, read.frame, coverage), read.frame)
        st.success(f"{len(table)} rows scored by {ref}.", icon=":material/check_circle:")
        if len(table) > MAX_SHOWN_ROWS:
            st.caption(f"Showing the first {MAX_SHOWN_ROWS:,} rows; the download holds all "
                       f"{len(table):,}.")
        st.dataframe(table.head(MAX_SHOWN_ROWS), hide_index=True, width="stretch")
        stem = upload.name.rsplit(".", 1)[0]
        st.download_button("Download predictions (CSV)", safe_csv_bytes(table),
                           file_name=f"{stem}-predictions-{name}-v{number}.csv",
                           mime="text/csv", icon=":material/download:")

st.subheader("What if…")
if market_spec(mv):
    empty_state("This market model rebuilds its indicators from each ticker's price history, "
                "so one row is not enough: upload a table of recent price rows above.")
    st.stop()
fields = what_if_fields(mv)
with st.form(f"what_if:{ref}"):
    st.caption("One row, starting from the training data's typical values (median number, "
               "most frequent category). Change any value and predict.")
    values: dict[str, object] = {}
    grid = st.grid(3, min_column_width=FIELD_WIDTH)  # wraps in reading order on a phone
    for field in (f for f in fields if f.used):
        col, key = grid, f"what_if:{ref}:{field.name}"
        if field.kind is FieldKind.NUMBER:
            values[field.name] = col.number_input(field.name, value=float(field.default),
                                                  format="%g", key=key)
        elif field.kind is FieldKind.CHOICE:
            values[field.name] = col.selectbox(field.name, field.options, key=key,
                                               index=field.options.index(field.default))
        else:
            values[field.name] = col.text_input(field.name, value=field.default, key=key) or None
    unused = [f.name for f in fields if not f.used]
    if unused:
        st.caption("Not used by the model (identifiers, free text): " + ", ".join(unused))
    submitted = st.form_submit_button("Predict this row")
if submitted:
    with user_errors():
        row = pd.DataFrame([{**{n: None for n in unused}, **values}])
        result = predict_with(pipeline, mv, row, coverage)
        value = result["prediction"].iloc[0]
        st.metric(f"Predicted {mv.target}",
                  str(value) if Task(mv.task).is_classification else f"{value:.4g}")
        if "lower" in result:
            st.caption(f"{coverage or 0.9:.0%} prediction interval: "
                       f"{result['lower'].iloc[0]:.4g} to {result['upper'].iloc[0]:.4g}.")
        proba = [c for c in result.columns if c.startswith("proba_")]
        if proba:
            bars = pd.DataFrame({"class": [c.removeprefix("proba_") for c in proba],
                                 "probability": result[proba].iloc[0].to_numpy(dtype=float)})
            st.altair_chart(alt.Chart(bars).mark_bar().encode(
                x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(
                    format="%")),
                y=alt.Y("class:N", sort="-x"), tooltip=["class", alt.Tooltip(
                    "probability:Q", format=".1%")]), width="stretch")
