"""Compare: versions of any model, or searches (jobs), side by side.

Deep links: `?versions=wine:1,wine:2` (model:version, any models) or `?jobs=1,2`."""

import streamlit as st

from app.ui import charts
from app.ui import compare as cmp
from app.ui.common import empty_state
from app.ui.deps import session
from app.ui.labels import metric_help
from app.ui.layout import apply_layout
from app.ui.links import page_link
from core.automl.metrics import METRICS

VERSIONS, SEARCHES = "Versions", "Searches"


def _direction(metric: str) -> str:
    m = METRICS.get(metric)
    return f"{metric} ({m.direction})" if m else metric


def _scores_config(columns: list[str]) -> dict:
    return {c: st.column_config.NumberColumn(c, format="%.4f") for c in columns}


def _table(frame, key: str, first: str, **config) -> None:
    """A side-by-side table shown whole (no inner scrolling), its row names pinned."""
    st.dataframe(frame, hide_index=True, width="stretch", height="content", key=key,
                 column_config={first: st.column_config.TextColumn(first, pinned=True,
                                                                   width="medium"),
                                **config})


def _links(items: list, page: str, label, params) -> None:
    """One link per compared item, up to four in a row."""
    cols = st.columns(min(len(items), 4))
    for i, item in enumerate(items):
        with cols[i % len(cols)]:
            page_link(page, label(item), query_params=params(item),
                      icon=":material/open_in_new:")


def _compare_versions(refs: list[str]) -> None:
    wanted = cmp.split_list(st.query_params.get("versions"))
    unknown = [r for r in wanted if r not in refs]
    if unknown:
        st.warning(f"Not a registered version: {', '.join(unknown)}. Versions are named "
                   "model:number (e.g. wine:1); pick them from the list below.",
                   icon=":material/warning:")
    default = [r for r in wanted if r in refs] or cmp.default_versions(refs)
    chosen = st.multiselect("Versions to compare", refs, default=default,
                            key="compare_versions",
                            help="Any versions of any models, written model:version.")
    st.query_params.pop("jobs", None)
    st.query_params["versions"] = cmp.join_list(chosen)  # the address is a deep link
    if not chosen:
        st.info("Choose two or more versions to see them side by side.", icon=":material/info:")
        return
    with session() as s:
        facts, _ = cmp.load_versions(chosen, session=s)

    st.subheader("What they are")
    _table(cmp.version_overview(facts), "compare_versions_overview", cmp.FIELD)
    _links(facts, "pages/version.py", lambda f: f"Open {f.ref}",
           lambda f: {"model": f.model, "version": str(f.version.version)})

    st.subheader("Metrics")
    st.caption(f"“{cmp.OOF}”: every row scored by a model that did not see it, as on each "
               "version's page; “holdout”: the latest rows, kept out of every choice (market "
               "models with a time column).")
    long = cmp.version_metrics(facts)
    table = cmp.metrics_table(long, chosen)
    st.dataframe(table, hide_index=True, width="stretch", height="content", placeholder="–",
                 key="compare_versions_metrics",
                 column_config=_scores_config(list(table.columns[2:])))
    shared = cmp.shared_metrics(long, len(facts))
    if shared:
        own = [f.version.metric for f in facts]
        first = own[0] if own[0] in shared and len(set(own)) == 1 else shared[0]
        metric = st.selectbox("Metric to chart", shared, index=shared.index(first),
                              key="compare_versions_metric", format_func=_direction,
                              help=metric_help(first))
        st.altair_chart(charts.grouped_bars(
            long[long["metric"] == metric], x="version", group="metrics", value="value",
            y_title=metric, title=_direction(metric), x_order=chosen), width="stretch",
            key="compare_versions_chart")
    elif len(facts) > 1:
        st.caption("These versions share no metric (different kinds of problem?): no chart, "
                   "compare the tables.")

    st.subheader("Parameters")
    params = cmp.params_table(facts)
    if len(params):
        _table(params, "compare_versions_params", "parameter")
    else:
        st.caption("None of these versions has tuned parameters (estimator defaults).")


def _compare_searches(jobs: list) -> None:
    labels = {j.id: cmp.search_label(j) + f" ({j.metric}, {j.state})" for j in jobs}
    wanted = cmp.split_list(st.query_params.get("jobs"))
    bad = [w for w in wanted if not w.isdigit() or int(w) not in labels]
    if bad:
        st.warning(f"No finished search with id {', '.join(bad)}. Pick searches from the list "
                   "below (running searches show on the Train page).",
                   icon=":material/warning:")
    default = [int(w) for w in wanted if w.isdigit() and int(w) in labels] or list(labels)[:2]
    chosen = st.multiselect("Searches to compare", list(labels), default=default,
                            format_func=labels.__getitem__, key="compare_jobs",
                            help="Finished, cancelled or failed searches of any models.")
    st.query_params.pop("versions", None)
    st.query_params["jobs"] = cmp.join_list(chosen)
    if not chosen:
        st.info("Choose two or more searches to see them side by side.", icon=":material/info:")
        return
    with session() as s:
        facts, _ = cmp.load_searches(chosen, session=s)

    st.subheader("What they found")
    _table(cmp.search_overview(facts), "compare_jobs_overview", cmp.FIELD)
    _links(facts, "pages/leaderboard.py", lambda f: f"Leaderboard of job {f.job.id}",
           lambda f: {"job": str(f.job.id)})

    families = cmp.best_per_family(facts)
    metrics = list(dict.fromkeys(f.job.metric for f in facts))
    st.subheader("Best score per estimator family")
    metric = metrics[0]
    if len(metrics) > 1:
        metric = st.selectbox("Metric", metrics, key="compare_jobs_metric",
                              format_func=_direction,
                              help="Searches scored by different metrics cannot share an axis.")
    shown = families[families["metric"] == metric]
    st.altair_chart(charts.grouped_bars(
        shown, x="family", group="search", value="best", y_title=f"best {metric} (CV)",
        title=_direction(metric)), width="stretch", key="compare_jobs_chart")
    left_out = [f.label for f in facts if f.job.metric != metric]
    if left_out:
        st.caption(f"Not on this chart (scored by another metric): {', '.join(left_out)}.")
    st.dataframe(shown.drop(columns=["metric"]), hide_index=True, width="stretch",
                 placeholder="–",
                 key="compare_jobs_families",
                 column_config={"best": st.column_config.NumberColumn(
                     f"best {metric} (CV)", format="%.4f", help=metric_help(metric, "cv")),
                     "trials": st.column_config.NumberColumn(help="Trials of this family, "
                                                             "pruned and failed included."),
                     "scored": st.column_config.NumberColumn(help="Trials scored on every "
                                                             "cross-validation fold.")})

    st.subheader("Settings")
    _table(cmp.search_settings(facts), "compare_jobs_settings", "setting")


apply_layout()
st.title("Compare")
with session() as s:
    all_refs = cmp.version_refs(session=s)
    all_jobs = cmp.searches(session=s)
if not all_refs and not all_jobs:
    empty_state("Nothing to compare yet: train a model (twice, or two models) and compare the "
                "versions or searches here.", links=[("pages/train.py", "Train a model")])
    st.stop()

asks_jobs = "jobs" in st.query_params and "versions" not in st.query_params
mode = st.radio("Compare", [VERSIONS, SEARCHES], index=1 if asks_jobs else 0, horizontal=True,
                key="compare_mode",
                help="Versions: registered models, their metrics and parameters. Searches: "
                     "training jobs, their trials and settings.")
if mode == VERSIONS:
    if all_refs:
        _compare_versions(all_refs)
    else:
        empty_state("No registered versions yet.", links=[("pages/train.py", "Train a model")])
else:
    if all_jobs:
        _compare_searches(all_jobs)
    else:
        empty_state("No finished searches yet.", links=[("pages/train.py", "Train a model")])
