"""Registry: versions per model with stage, semantic version, aliases, metrics, lineage, stage
moves (confirmed) and alias history."""

import pandas as pd
import streamlit as st

from app.ui.common import empty_state, user_errors
from app.ui.deps import session
from app.ui.identity import current_actor
from app.ui.layout import FIELD_WIDTH, apply_layout, responsive_columns
from app.ui.links import page_link
from app.ui.permissions import act
from app.ui.readable import alias_history_frame
from app.ui.times import when
from app.ui.version import stage_blocker, version_label
from core.enums import Stage
from core.registry import alias_history, list_models, list_versions
from core.usecases.aliases import set_alias
from core.usecases.stages import set_stage, traffic

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
    "version": v.version, "semver": f"v{v.semver}", "stage": v.stage,
    "aliases": ", ".join(v.aliases), "estimator": v.estimator,
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
    if act(st.form_submit_button, "Move alias"):
        with user_errors(), session() as s:
            set_alias(name, int(version), alias.strip(), session=s, reason=reason,
                      actor=current_actor())
            st.toast(f"{name}@{alias} → version {version}")
            st.rerun()

st.subheader("Stages")
st.caption("Production is the `production` alias (what the model's endpoint serves); "
           "Staging may hold several versions; an Archived version never takes traffic but "
           "can still be opened, compared and used as NAME:VERSION for analysis.")
with session() as s:
    stable, candidate = traffic(name, session=s)
by_number = {v.version: v for v in versions}
c1, c2, c3 = responsive_columns(3, min_width=FIELD_WIDTH)
moving = c1.selectbox("Version", list(by_number)[::-1], key="stage_version",
                      format_func=lambda n: version_label(by_number[n]))
target = Stage(c2.selectbox("Move to", list(Stage), key="stage_target"))
stage_reason = c3.text_input("Why", key="stage_reason")
mv = by_number[moving]
production = next((v.version for v in versions if v.stage == Stage.PRODUCTION), None)
archive_existing = False
if target == Stage.PRODUCTION and production not in (None, moving):
    archive_existing = st.checkbox(f"Archive version {production} (production now)",
                                   key="stage_archive_existing")
blocker = stage_blocker(mv, target, stable=stable, candidate=candidate)
ask = {"version": moving, "target": target.value, "archive": archive_existing,
       "production": production}
if act(st.button, f"Move version {moving} to {target}", key="stage_move",
       disabled=bool(blocker), help=blocker or "Asks for a confirmation first."):
    st.session_state["stage_pending"] = ask
pending = st.session_state.get("stage_pending")
if pending is not None and pending != ask:  # the choice or Production changed: ask again
    st.session_state.pop("stage_pending")
    if pending["production"] != production:
        st.error(f"Nothing was moved: {name}'s Production changed (another request) while "
                 "this move waited for its confirmation. Check the table, then move again.")
elif pending is not None:
    effects = []
    if target == Stage.PRODUCTION:
        effects.append(f"`{name}@production` moves to version {moving}"
                       + (" and the deployment serves it at once" if stable else ""))
    if archive_existing:
        effects.append(f"version {production} is Archived")
    if target == Stage.ARCHIVED:
        effects.append("it never takes traffic again until restored"
                       + (f"; its aliases ({', '.join(mv.aliases)}) are removed"
                          if mv.aliases else ""))
    if mv.stage == Stage.PRODUCTION:
        effects.append(f"{name} has no Production version afterwards")
    st.warning(f"Move **{name}:{moving}** (v{mv.semver}) from {mv.stage} to **{target}**?"
               + (f" Then {'; '.join(effects)}." if effects else ""))
    b1, b2, _ = st.columns([1, 1, 4])
    if act(b1.button, "Confirm", key="stage_confirm", type="primary"):
        st.session_state.pop("stage_pending")
        with user_errors(), session() as s:
            change = set_stage(name, moving, target, session=s, actor=current_actor(),
                               archive_existing=archive_existing, reason=stage_reason,
                               expected_production=production)
            st.toast(f"{name}:{moving} → {change.to_stage}")
            st.rerun()
    if b2.button("Cancel", key="stage_cancel"):
        st.session_state.pop("stage_pending")
        st.rerun()

st.subheader("Alias history")
with session() as s:
    history = alias_history(name, session=s)
if history:
    st.caption("Newest first")
    st.dataframe(alias_history_frame(history), hide_index=True, width="stretch")
else:
    empty_state("No alias has been set for this model yet.")
