"""Train: configure a search, start it as a background job, watch it live, cancel it."""

import streamlit as st

from app.ui.charts import best_so_far
from app.ui.choices import (
    keep_compatible,
    remember_date_use,
    remember_target,
    take_link_choices,
)
from app.ui.common import empty_state, pick_dataset, user_errors
from app.ui.deps import database, session
from app.ui.identity import current_actor
from app.ui.jobs import (
    elapsed_fraction,
    has_results,
    next_steps,
    progress_text,
    registered_score,
    trials_frame,
)
from app.ui.labels import score_card
from app.ui.layout import CARD_WIDTH, apply_layout, responsive_columns
from app.ui.permissions import act
from app.ui.search_space import space_overrides
from app.workers import ensure_local_worker
from core.automl.catalog import CATALOG
from core.automl.dates import (
    DateUse,
    date_columns,
    date_warning,
    plan_dates,
    preferred_time_column,
)
from core.automl.deep import INSTALL_HINT as DEEP_INSTALL_HINT
from core.automl.deep import available as deep_available
from core.automl.metrics import METRICS
from core.automl.request import MAX_TRIALS, TrainingRequest
from core.data.datasets import list_datasets
from core.enums import TrialState
from core.glossary import explain
from core.jobs.ledger import request_cancel
from core.jobs.states import JobState
from core.jobs.views import read_job
from core.usecases.training import submit

apply_layout()
st.title("Train")
with session() as s:
    datasets = list_datasets(session=s)
if not datasets:
    empty_state("No datasets yet: upload a table or load a sample first.",
                links=[("pages/data.py", "Upload a table")])
    st.stop()

take_link_choices()  # ?dataset=…&target=… from the Data page's link
ds = pick_dataset(datasets)
columns = [c["name"] for c in ds.columns]
keep_compatible(ds)  # a dataset change keeps every choice the new table allows
dates = date_columns(ds.columns)
if dates:
    st.warning(date_warning(dates), icon=":material/calendar_month:")

# outside the form, so the search-space expanders below follow the choice at once
estimators = st.multiselect("Estimators (empty = all that fit the task)", list(CATALOG),
                            format_func=lambda k: CATALOG[k].label, key="train_estimators",
                            help="PyTorch networks (deep_tabular; lstm and tcn for market data "
                                 "in time order) are searched only when chosen here.")
if not deep_available():
    st.caption(f":material/info: {DEEP_INSTALL_HINT}")
with st.form("train"):
    c1, c2 = st.columns(2)
    target = c1.selectbox("Target (column to predict)", columns, key="train_target")
    name = c2.text_input("Model name", key="train_name")
    c3, c4, c5 = st.columns(3)
    task = c3.selectbox("Task", ["auto", "classification", "regression"], key="train_task",
                        help="classification predicts a category (yes/no, a label); "
                             "regression predicts an amount. auto decides from the column.")
    metric = c4.selectbox("Metric", ["auto", *METRICS], key="train_metric",
                          help="How trials are scored. auto picks roc_auc (two classes), "
                               "log_loss (more classes) or rmse (amounts).\n\n"
                               + "\n\n".join(m.describe() for m in METRICS.values()))
    method = c5.selectbox("Search method", ["tpe", "random", "grid"], key="train_method",
                          help="\n\n".join(explain(k) or k for k in ("tpe", "random", "grid")))
    b1, b2 = st.columns([3, 1])
    budget = b1.slider("Time budget (seconds)", 10, 600, 60, step=10, key="train_budget")
    n_trials = b2.number_input("Stop after N trials (0 = no limit)", min_value=0,
                               max_value=MAX_TRIALS, value=0, step=1, key="train_trials",
                               help="The search stops at the budget or after this many "
                                    "trials (pruned and failed ones count), whichever "
                                    "comes first.")
    space = space_overrides(estimators)
    if dates:
        date_use = st.radio("Date columns", [u.value for u in DateUse], key="train_dates",
                            format_func=lambda u: DateUse(u).describe(
                                preferred_time_column(dates)),
                            help="A date split into year, month, day and weekday can encode "
                                 "the order the rows were collected in rather than anything "
                                 "that predicts new rows. Time order validates on later rows, "
                                 "as predictions will be made.")
    else:
        date_use = DateUse.FEATURE.value
    c6, c7 = st.columns(2)
    time_column = c6.selectbox("Time column (validate in time order)", ["—", *columns],
                               key="train_time")
    ensemble = c7.toggle("Try an ensemble of the best trials", value=True,
                         key="train_ensemble")
    with st.expander("Price tables: predict a forward move instead of the column itself"):
        m1, m2, m3, m4 = st.columns(4)
        target_kind = m1.selectbox("Target", ["level", "direction", "return", "log_return"],
                                   key="train_target_kind",
                                   help="level = the target column as is; otherwise the target "
                                        "column is a price and the model predicts its move "
                                        "over the horizon, with indicator features and a "
                                        "backtest")
        horizon = m2.number_input("Horizon (periods)", min_value=1, max_value=250, value=1,
                                  key="train_horizon")
        ticker = m3.selectbox("Ticker column", ["—", *columns], key="train_ticker")
        cost = m4.number_input("Cost per trade (bps)", min_value=0.0, value=5.0,
                               key="train_cost")
    started = act(st.form_submit_button, "Start training", type="primary")

if started:
    remember_target(ds.id, target)
    remember_date_use(ds.id, date_use)
    plan = plan_dates(date_use, dates, None if time_column == "—" else time_column)
    with user_errors():
        request = TrainingRequest.create(
            dataset=ds.id, target=target, name=name.strip() or None, task=task, metric=metric,
            budget=float(budget), estimators=estimators or None, search=method,
            n_trials=int(n_trials) or None, search_space=space,
            ensemble=ensemble, time_column=plan.time_column,
            exclude=tuple(c for c in plan.exclude if c != target) or None,
            market=None if target_kind == "level" else {
                "kind": target_kind, "horizon": int(horizon), "cost_bps": cost,
                "ticker_column": None if ticker == "—" else ticker})
        with session() as s:
            job = submit(request, session=s, actor=current_actor())
        ensure_local_worker(database())
        st.session_state["job_id"] = job.id
        st.query_params["job"] = str(job.id)

job_id = st.session_state.get("job_id") or st.query_params.get("job")


@st.fragment(run_every=1)
def live(job_id: int) -> None:
    with session() as s:
        job = read_job(job_id, session=s, by="ui")
        text = progress_text(job, session=s)
        trials = trials_frame(job.id, session=s)
        version, score, kind = registered_score(job, session=s)
    st.subheader(f"Job {job.id}: {job.model}")
    # a search with a number of trials ends at whichever limit comes first
    limit = job.settings.get("n_trials")
    done = max(elapsed_fraction(job), min(1.0, (job.trials or 0) / limit) if limit else 0.0)
    st.progress(done, text=text)
    for note in job.progress.get("notes", []):  # left-out columns, time order, leaks
        st.caption(note)
    if not trials.empty and (trials["status"] == TrialState.OK).any():
        st.altair_chart(best_so_far(trials, job.metric, METRICS[job.metric].greater_is_better),
                        width="stretch")
    if not job.state.is_terminal:
        if act(st.button, "Cancel job", key="cancel"):
            with user_errors(), session() as s:
                request_cancel(job.id, session=s, actor=current_actor())
        return
    if job.state == JobState.COMPLETED:
        st.success(f"Done: registered version {version} of **{job.model}**.")
        c1, c2 = responsive_columns(2, min_width=CARD_WIDTH)
        score_card(c1, f"Registered version {version}", score, job.metric, kind or "cv")
        if kind == "oof":  # an ensemble: its score is not the best single trial's
            score_card(c2, "Best single trial", job.progress.get("best_score"), job.metric,
                       "cv")
        next_steps(job, version)
    elif job.state == JobState.FAILED:
        st.error(f"The job failed: {job.error}")
    elif has_results(job):
        st.warning(f"The job was cancelled after {job.progress.get('trials_done')} trials: no "
                   "version was registered; the finished trials are kept.")
        next_steps(job, None)
    else:
        st.warning(f"The job was {job.state.lower()}.")


if job_id:
    with user_errors():
        live(int(job_id))
else:
    st.caption("Pick a target and a budget, then start: training runs in a background worker, "
               "so you can leave this page and come back.")
