"""Registry: versions per model with aliases, metrics, lineage and alias history."""

import pandas as pd
import streamlit as st

from app.ui.common import empty_state, user_errors
from app.ui.deps import session
from app.ui.layout import FIELD_WIDTH, apply_layout, responsive_columns
from app.ui.links import page_link
from app.ui.readable import alias_history_frame
from app.ui.times import when
from core.registry import alias_history, list_models, list_versions
from core.usecases.aliases import set_alias

apply_layout()
st.title("Model registry")
with session() as s:
    models = list_models(session=s)
if not models:
    empty_state("No models registered yet. Train one, then manage its versions here.",
                links=[("pages/train.py", "Train a model")])
    st.stop()

name = st.selectbox("Model", [m.name for m in models])
with session() as s:
    versions = list_versions(name, session=s)
table = pd.DataFrame([{
    "version": v.version, "aliases": ", ".join(v.aliases), "estimator": v.estimator,
    "metric": v.metric, "score": v.score, "dataset": v.dataset_id, "job": v.job_id,
    "parent": v.parent_version, "fingerprint": v.fingerprint[:12],
    "created": when(v.created_at)} for v in versions])
st.dataframe(table, hide_index=True, width="stretch")
with st.expander("Open a version: schema, metrics, lineage, download"):
    for v in versions[::-1]:
        page_link("pages/version.py", label=f"Open version {v.version}",
                  query_params={"model": name, "version": str(v.version)},
                  icon=":material/deployed_code:")

for v in versions:
    diff = v.library_mismatch
    if diff and not diff.accepted:
        st.warning(f"Version {v.version} was saved with scikit-learn {diff.saved} and this "
                   f"workbench runs {diff.running}: it will not load until you retrain it "
                   f"or accept the difference (`workbench accept {name} {v.version}`).")

with st.form("alias"):
    st.write("Point an alias at a version")
    c1, c2, c3 = responsive_columns(3, min_width=FIELD_WIDTH)
    version = c1.selectbox("Version", [v.version for v in versions][::-1])
    alias = c2.text_input("Alias", value="production")
    reason = c3.text_input("Why", value="")
    if st.form_submit_button("Move alias"):
        with user_errors(), session() as s:
            set_alias(name, int(version), alias.strip(), session=s, reason=reason, actor="ui")
            st.toast(f"{name}@{alias} → version {version}")
            st.rerun()

st.subheader("Alias history")
with session() as s:
    history = alias_history(name, session=s)
if history:
    st.caption("Newest first")
    st.dataframe(alias_history_frame(history), hide_index=True, width="stretch")
else:
    empty_state("No alias has been set for this model yet.")
