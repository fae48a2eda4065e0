"""Model version: everything about one version, a verified download and alias moves.

Deep link: `?model=NAME&version=N` (without `version`: production, else the latest)."""

import streamlit as st

from app.ui.common import empty_state, user_errors
from app.ui.deps import session
from app.ui.identity import current_actor
from app.ui.layout import CARD_WIDTH, FIELD_WIDTH, apply_layout, responsive_columns
from app.ui.links import page_link
from app.ui.metrics_text import interval_caption, version_metrics
from app.ui.permissions import act
from app.ui.times import when
from app.ui.version import (
    alias_event_text,
    default_version,
    key_value_frame,
    schema_frame,
    version_label,
)
from core.registry import (
    PRODUCTION,
    alias_history,
    check_alias_name,
    list_models,
    list_versions,
    resolve,
)
from core.registry.artifacts import read_verified
from core.usecases.aliases import set_alias

OTHER_ALIAS = "other…"

apply_layout()
st.title("Model version")
with session() as s:
    models = list_models(session=s)
if not models:
    empty_state("No models registered yet. Train one, then open any of its versions here.")
    page_link("pages/train.py", label="Train a model", icon=":material/model_training:")
    st.stop()

names = [m.name for m in models]
wanted_model = st.query_params.get("model", "")
name = st.selectbox("Model", names,
                    index=names.index(wanted_model) if wanted_model in names else 0)
with session() as s:
    versions = list_versions(name, session=s)
if not versions:
    empty_state(f"{name} has no versions.")
    st.stop()
numbers = [v.version for v in versions][::-1]  # newest first
wanted = st.query_params.get("version", "") if name == wanted_model else ""
current = int(wanted) if wanted.isdigit() and int(wanted) in numbers else default_version(versions)
by_number = {v.version: v for v in versions}
number = st.selectbox("Version", numbers, index=numbers.index(current),
                      format_func=lambda n: version_label(by_number[n]))
st.query_params.update({"model": name, "version": str(number)})  # the address is a deep link
v = by_number[number]
with session() as s:
    _, mv = resolve(f"{name}:{number}", session=s)
label = f"{name}:{number}"

flash = st.session_state.pop("version_flash", None)
if flash:
    st.success(flash)
diff = v.library_mismatch
if diff and not diff.accepted:
    st.warning(f"Version {number} was saved with scikit-learn {diff.saved} and this "
               f"workbench runs {diff.running}: it will not load until you retrain it or "
               f"accept the difference (`workbench accept {name} {number}`).")
if v.archived:
    st.info("This version is Archived: it never takes traffic nor an alias, but it can still "
            f"be used as {name}:{number} for analysis. Restore it on the Registry page or with "
            f"`workbench stage {name} {number} Staging`.")

c1, c2, c3, c4 = responsive_columns(4, min_width=CARD_WIDTH)
c1.metric(v.metric or "score", f"{v.score:.4f}" if v.score is not None else "–")
c2.metric("Estimator", v.estimator or "–")
c3.metric("Task", v.task)
c4.metric("Aliases", ", ".join(v.aliases) or "none")
st.caption(f"Stage **{v.stage}** · semantic version **v{v.semver}** ({name}@v{v.semver}) · "
           f"target **{mv.target}** · created {when(v.created_at)} "
           f"by {v.created_by or 'unknown'}"
           + (f" · classes: {', '.join(map(str, mv.classes))}" if mv.classes else ""))

left, right = responsive_columns(2)
with left:
    st.subheader("Input schema")
    if mv.input_schema:
        st.dataframe(schema_frame(mv.input_schema), hide_index=True, width="stretch")
    else:
        st.caption("No input schema was recorded.")
    st.subheader("Parameters")
    if v.params:
        st.dataframe(key_value_frame(v.params, "parameter", "value"), hide_index=True,
                     width="stretch")
    else:
        st.caption("The estimator's defaults (no tuned parameters).")
with right:
    ev = mv.evaluation or {}
    st.subheader("Metrics: out-of-fold cross-validation")
    cv_metrics, imbalance_note = version_metrics(ev, ev.get("metrics") or v.metrics)
    if cv_metrics:
        st.dataframe(key_value_frame(cv_metrics, "metric", "score"), hide_index=True,
                     width="stretch")
        for note in (imbalance_note, interval_caption(ev)):
            if note:
                st.caption(note)
        if ev.get("n_validation_rows"):
            st.caption(f"Each of {ev['n_validation_rows']} rows scored by a model that did not "
                       "see it during training.")
    else:
        st.caption("No evaluation was recorded for this version (an imported model?).")
    holdout = (ev.get("backtest") or {}).get("holdout")
    st.subheader("Metrics: holdout")
    if holdout:
        scalars = {k: val for k, val in holdout.items() if not isinstance(val, dict | list)}
        st.dataframe(key_value_frame(scalars, "metric", "score"), hide_index=True,
                     width="stretch")
    else:
        st.caption("No holdout: this version was chosen and scored by cross-validation only "
                   "(market models with a time column also get a holdout of the latest rows).")

st.subheader("Lineage")
c1, c2, c3 = responsive_columns(3, min_width=FIELD_WIDTH)
with c1:
    if v.dataset_id is not None:
        st.write(f"Dataset {v.dataset_id}"
                 + (f" (fingerprint `{v.dataset_fingerprint[:12]}`)"
                    if v.dataset_fingerprint else ""))
        page_link("pages/data.py", label="Open Data", icon=":material/table:")
    else:
        st.write("Dataset: not recorded")
with c2:
    if v.job_id is not None:
        st.write(f"Trained by job {v.job_id}")
        page_link("pages/leaderboard.py", label=f"Leaderboard of job {v.job_id}",
                  query_params={"job": str(v.job_id)}, icon=":material/leaderboard:")
    else:
        st.write("Job: none (trained or imported outside a search)")
with c3:
    parent = v.parent_version
    if parent is not None:
        st.write(f"Parent: version {parent}")
        page_link("pages/version.py", label=f"Open version {parent}",
                  query_params={"model": name, "version": str(parent)},
                  icon=":material/deployed_code:")
    else:
        st.write("Parent: none (the first version)")

st.subheader("Artifact")
st.write(f"Fingerprint (SHA-256): `{v.fingerprint}` · {v.size_bytes:,} bytes · "
         f"{mv.artifact_format}")
with user_errors():
    data = read_verified(mv.artifact_path, mv.fingerprint, label,
                         stored_fingerprint=mv.stored_fingerprint)
    deep = mv.artifact_format == "wbdeep"  # PyTorch networks: a zip of JSON, safetensors, skops
    st.download_button("Download the artifact", data=data,
                       file_name=f"{name}-v{number}.{'wbdeep' if deep else 'skops'}",
                       mime="application/octet-stream", icon=":material/download:",
                       help="The stored file, handed out only after its fingerprint matched. "
                            + ("A zip: the networks as JSON + safetensors, the rest as skops "
                               "(workbench import loads it)." if deep else
                               "Load it with skops.io.load and an explicit trusted list."))
st.caption("Library versions it was saved with")
st.dataframe(key_value_frame(v.library_versions, "library", "version"), hide_index=True)

st.subheader("Aliases")
st.write(f"This version carries: **{', '.join(v.aliases)}**" if v.aliases
         else "This version carries no alias.")
with session() as s:
    history = alias_history(name, session=s)
if history:
    st.caption(f"History of {name}'s aliases, newest first")
    st.markdown("\n".join(f"- {alias_event_text(e)}" for e in reversed(history)))
else:
    st.caption(f"No alias of {name} has been set yet.")

# Set an alias: a choice, then a confirmation naming what it replaces (not a form: the
# confirmation depends on the choice).
c1, c2, c3 = responsive_columns(3, min_width=FIELD_WIDTH)
choice = c1.selectbox("Alias", [PRODUCTION, "staging", OTHER_ALIAS], key="version_alias")
alias = (c2.text_input("Alias name", key="version_alias_custom").strip()
         if choice == OTHER_ALIAS else choice)
reason = c3.text_input("Why", key="version_alias_reason")
target = {"model": name, "version": number, "alias": alias}
if act(st.button, "Set alias", key="version_alias_set", disabled=v.archived or not alias):
    with user_errors():
        check_alias_name(alias)
        st.session_state["version_alias_pending"] = target
pending = st.session_state.get("version_alias_pending")
if pending is not None and pending != target:  # the choice changed: ask again
    st.session_state.pop("version_alias_pending")
elif pending is not None:
    holder = next((o.version for o in versions if alias in o.aliases), None)
    now = (f"it points at version {holder} now" if holder is not None else "it is not set yet")
    serving = (" Serving follows `production`: requests to the model's endpoint will be "
               "answered by this version." if alias == PRODUCTION else "")
    st.warning(f"Point **{name}@{alias}** at version {number}? ({now}.){serving}")
    b1, b2, _ = st.columns([1, 1, 4])
    if act(b1.button, "Confirm", key="version_alias_confirm", type="primary"):
        st.session_state.pop("version_alias_pending")
        with user_errors(), session() as s:
            set_alias(name, number, alias, session=s, actor=current_actor(), reason=reason)
            st.session_state["version_flash"] = f"{name}@{alias} → version {number}"
            st.rerun()
    if b2.button("Cancel", key="version_alias_cancel"):
        st.session_state.pop("version_alias_pending")
        st.rerun()
