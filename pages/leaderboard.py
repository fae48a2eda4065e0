"""Leaderboard: every trial of a search, charts of the winner, alias actions."""

import pandas as pd
import streamlit as st

from app.ui import charts
from app.ui.common import empty_state, user_errors
from app.ui.deps import session
from app.ui.identity import current_actor
from app.ui.jobs import has_results, trials_frame
from app.ui.labels import metric_help, score_card, score_kind
from app.ui.layout import CARD_WIDTH, apply_layout, responsive_columns
from app.ui.links import page_link
from app.ui.permissions import act
from core.automl.metrics import METRICS
from core.enums import TrialState
from core.glossary import explain
from core.jobs.states import JobState
from core.jobs.views import read_jobs
from core.registry import version_by_id
from core.usecases.aliases import set_alias

apply_layout()
st.title("Leaderboard")
with session() as s:
    jobs = [j for j in read_jobs(session=s, limit=200, by="ui") if has_results(j)]
if not jobs:
    empty_state("No finished searches yet: start one on the Train page.",
                links=[("pages/train.py", "Train a model")])
    st.stop()

labels = {j.id: f"job {j.id}: {j.model} ({j.metric})"
          + ("" if j.state == JobState.COMPLETED else " · cancelled") for j in jobs}
job_ids = list(labels)
wanted = st.query_params.get("job", "")
default = job_ids.index(int(wanted)) if wanted.isdigit() and int(wanted) in job_ids else 0
chosen = st.selectbox("Search", job_ids, index=default, format_func=labels.__getitem__,
                      key="lb_search")  # keyed: the index follows the last pick
st.query_params["job"] = str(chosen)  # the address bar is a deep link to this search
page_link("pages/compare.py", "Compare this search with others",
          query_params={"jobs": str(chosen)}, icon=":material/compare_arrows:")
job = next(j for j in jobs if j.id == chosen)
metric = METRICS[job.metric]
with session() as s:
    trials = trials_frame(job.id, session=s)
    version = version_by_id(job.version_id, session=s) if job.version_id else None
trials = trials.sort_values("score", ascending=not metric.greater_is_better,
                            na_position="last")

if version is not None:
    c1, c2, c3 = responsive_columns(3, min_width=CARD_WIDTH)
    score_card(c1, f"Registered version {version.version}", version.score, job.metric,
               score_kind(version.estimator))
    c2.metric("Winner", version.estimator,
              help=explain("ensemble") if version.estimator == "ensemble" else None)
    c3.metric("Trials", len(trials))
    for note in version.evaluation.get("notes", []):  # dropped leaks, left-out rows
        st.warning(note)
    for tip in version.evaluation.get("suggestions", []):
        st.info(tip, icon=":material/lightbulb:")
if job.state == JobState.CANCELLED:
    st.info(f"This search was cancelled: no version was registered. The {len(trials)} trials "
            "that ran before the cancel are kept below.", icon=":material/info:")

st.dataframe(trials, hide_index=True, width="stretch", column_config={
    "score": st.column_config.NumberColumn(f"{job.metric} (CV)", format="%.4f",
                                           help=metric_help(job.metric, "cv")),
    "std": st.column_config.NumberColumn("± std", format="%.4f"),
    "fit_time_s": st.column_config.NumberColumn("fit s", format="%.2f"),
    "predict_ms_per_1k": st.column_config.NumberColumn("predict ms/1k", format="%.1f")})

c1, c2 = responsive_columns(2)
with c1:
    st.caption("Score by trial, with the best so far")
    st.altair_chart(charts.best_so_far(trials, job.metric, metric.greater_is_better),
                    width="stretch")
with c2:
    st.caption("Score against prediction speed")
    st.altair_chart(charts.score_vs_speed(trials, job.metric, metric.greater_is_better),
                    width="stretch")
counts = charts.trial_counts(trials)
if (trials["status"] != TrialState.OK).any():
    st.caption(charts.UNSCORED_NOTE)
st.caption("Trials per estimator family and how they ended")
st.dataframe(counts, hide_index=True, key="lb_trial_counts", column_config={
    "scored": st.column_config.NumberColumn(help="Scored on every cross-validation fold."),
    "pruned": st.column_config.NumberColumn(help="Stopped before its last fold: behind "
                                            "the best trial, out of time, or cancelled."),
    "failed": st.column_config.NumberColumn(help="The estimator raised an error: hover the "
                                            "trial's point, or read its reason in the table.")})

picked = st.multiselect("Compare trials side by side", trials["trial"].tolist(),
                        default=trials["trial"].tolist()[:2])
if picked:
    st.dataframe(trials[trials["trial"].isin(picked)].set_index("trial").T.astype(str),
                 width="stretch")  # one column per trial mixes types: show them as text

if version is None:
    st.stop()
ev = version.evaluation
st.subheader(f"Evaluation of {job.model}:{version.version} (out-of-fold)")
st.caption("Every metric on all out-of-fold predictions pooled together. For a single pipeline "
           "the registered CV score above is the mean of the fold scores, so the two can differ "
           "slightly; for an ensemble they are the same number.")
st.dataframe(pd.DataFrame([ev.get("metrics", {})]), hide_index=True, width="stretch",
             column_config={k: st.column_config.NumberColumn(format="%.4f",
                                                             help=metric_help(k, "oof"))
                            for k in ev.get("metrics", {})})
c1, c2 = responsive_columns(2)
if "confusion_matrix" in ev:
    c1.altair_chart(charts.confusion_matrix(ev["confusion_matrix"]), width="stretch")
if "roc_curve" in ev:
    c2.altair_chart(charts.roc_curve(ev["roc_curve"], ev.get("metrics", {}).get("roc_auc")),
                    width="stretch")
    c1.altair_chart(charts.curve(ev["pr_curve"], "recall", "precision", "Precision-recall"),
                    width="stretch")
if "residuals" in ev:
    c1.altair_chart(charts.residuals(ev["residuals"]), width="stretch")
if ev.get("feature_importance"):
    c2.altair_chart(charts.importance(ev["feature_importance"]), width="stretch")

if ev.get("backtest"):
    bt = ev["backtest"]
    st.subheader("Backtest (walk-forward, out-of-fold)")
    m = bt["metrics"]
    cols = responsive_columns(4, min_width=CARD_WIDTH)
    for col, (key, label) in zip(cols, [("hit_rate", "hit rate"),
                                        ("strategy_total_return", "long/flat return"),
                                        ("buy_and_hold_total_return", "buy & hold return"),
                                        ("strategy_max_drawdown", "max drawdown")], strict=True):
        value = m.get(key)
        col.metric(label, f"{value:.1%}" if isinstance(value, float) else "–")
    st.altair_chart(charts.equity(bt["equity"]), width="stretch")
    if bt.get("folds"):
        st.dataframe(pd.DataFrame(bt["folds"]), hide_index=True, width="stretch")
    for note in bt.get("notes", []):
        st.caption(note)

# Not a form: the button's label follows the chosen alias, and a label that changed between
# runs would make the click land on a button that no longer exists.
c1, c2 = st.columns([1, 2])
alias = c1.selectbox("Set alias", ["production", "staging", "golden"], key="lb_alias")
reason = c2.text_input("Why", value="", key="lb_alias_reason")
if act(st.button, f"Point {alias} at version {version.version}", key="lb_alias_set"):
    with user_errors(), session() as s:
        set_alias(job.model, version.version, alias, session=s, actor=current_actor(),
                  reason=reason)
        st.success(f"{job.model}@{alias} → version {version.version}")
page_link("pages/version.py", f"Open {job.model} version {version.version}",
          query_params={"model": job.model, "version": str(version.version)},
          icon=":material/deployed_code:")
page_link("pages/deployments.py", f"Deploy {job.model} version {version.version}",
          icon=":material/rocket_launch:")
