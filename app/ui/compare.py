"""Compare across searches: versions (of any model) or searches (jobs) side by side.

Loaders read the store once per page run; everything else is a pure function from those
records to the frames the Compare page shows, so the tests can check the tables directly.
Scores are named as the Model version page names them: the registered score with its kind
(CV score or out-of-fold), then "out-of-fold cross-validation" and "holdout" metric tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlmodel import Session

from app.ui.jobs import trials_frame
from app.ui.labels import KIND_LABEL, score_kind
from app.ui.version import cell_text
from core.automl.metrics import METRICS, shown_metrics, stored_imbalance
from core.enums import TrialState
from core.jobs import ledger
from core.jobs.public import JobPublic
from core.jobs.views import read_jobs
from core.registry import VersionPublic, list_models, list_versions, resolve, version_by_id

OOF = "out-of-fold cross-validation"  # the headings of the Model version page
HOLDOUT = "holdout"
FIELD = "field"  # the first column of the overview tables
MAX_JOBS = 500


def _score(value: float | None) -> str:
    return f"{value:.4f}" if isinstance(value, float) else "–"


# -- deep links -----------------------------------------------------------------------------
def split_list(text: str | None) -> list[str]:
    """`a, b,,a` -> ["a", "b"]: a query parameter's comma-separated items, once each."""
    items = [part.strip() for part in (text or "").split(",")]
    return list(dict.fromkeys(i for i in items if i))


def join_list(items: list[Any]) -> str:
    return ",".join(str(i) for i in items)


# -- versions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class VersionFacts:
    """One registered version and its stored evaluation, under its reference `model:N`."""

    ref: str
    model: str
    version: VersionPublic
    evaluation: dict[str, Any]


def version_refs(*, session: Session) -> list[str]:
    """Every registered version as `model:N`, models by name, newest version first."""
    refs = []
    for m in sorted(list_models(session=session), key=lambda m: m.name):
        refs += [f"{m.name}:{v.version}"
                 for v in reversed(list_versions(m.name, session=session))]
    return refs


def default_versions(refs: list[str]) -> list[str]:
    """What a bare /compare shows: the two newest versions of the first model that has two
    (a retrain against its predecessor), else the first two versions listed."""
    by_model: dict[str, list[str]] = {}
    for ref in refs:
        by_model.setdefault(ref.rsplit(":", 1)[0], []).append(ref)
    pair = next((found[:2] for found in by_model.values() if len(found) >= 2), None)
    return pair or refs[:2]


def load_versions(refs: list[str], *, session: Session) -> tuple[list[VersionFacts], list[str]]:
    """The versions `refs` name, in that order, and the references that name none."""
    known = set(version_refs(session=session))
    found, unknown = [], []
    for ref in refs:
        if ref not in known:
            unknown.append(ref)
            continue
        name, number = ref.rsplit(":", 1)
        public = next(v for v in list_versions(name, session=session)
                      if v.version == int(number))
        _, mv = resolve(ref, session=session)
        found.append(VersionFacts(ref, name, public, dict(mv.evaluation or {})))
    return found, unknown


def registered_score_label(metric: str, estimator: str | None) -> str:
    return f"{metric} ({KIND_LABEL[score_kind(estimator)]})" if metric else "score"


def version_overview(facts: list[VersionFacts]) -> pd.DataFrame:
    """What each version is, one column per version (text, so mixed values read as written)."""
    rows: dict[str, dict[str, str]] = {}
    for f in facts:
        v = f.version
        rows[f.ref] = {
            "model": f.model, "version": str(v.version), "estimator": v.estimator or "–",
            "task": str(v.task), "target": v.target,
            "registered score": (f"{_score(v.score)} "
                                 f"{registered_score_label(v.metric, v.estimator)}"),
            "aliases": ", ".join(v.aliases) or "–",
            "dataset": cell_text(v.dataset_id), "job": cell_text(v.job_id),
            "created": f"{v.created_at:%Y-%m-%d %H:%M} UTC",
        }
    return _side_by_side(rows, FIELD)


def version_metrics(facts: list[VersionFacts]) -> pd.DataFrame:
    """Long table: version, metrics (OOF or holdout), metric, value; what the page pivots and
    charts."""
    rows = []
    imbalanced = any(stored_imbalance(f.evaluation) for f in facts)  # shown for all, or none
    for f in facts:
        oof = shown_metrics(f.evaluation.get("metrics") or f.version.metrics, imbalanced)
        rows += [{"version": f.ref, "metrics": OOF, "metric": k, "value": v}
                 for k, v in oof.items() if isinstance(v, int | float)]
        holdout = (f.evaluation.get("backtest") or {}).get("holdout") or {}
        rows += [{"version": f.ref, "metrics": HOLDOUT, "metric": k, "value": v}
                 for k, v in holdout.items() if isinstance(v, int | float)
                 and not isinstance(v, bool)]
    return pd.DataFrame(rows, columns=["version", "metrics", "metric", "value"])


def metrics_table(long: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """One row per (metrics, metric), one column per version, in the order chosen."""
    if long.empty:
        return pd.DataFrame(columns=["metrics", "metric", *columns])
    table = long.pivot_table(index=["metrics", "metric"], columns="version", values="value",
                             aggfunc="first")
    table = table.reindex(columns=[c for c in columns if c in table.columns])
    table.columns.name = None
    return table.reset_index()


def shared_metrics(long: pd.DataFrame, n_items: int, column: str = "version") -> list[str]:
    """Metrics every compared item has (out-of-fold ones first): those a chart can compare."""
    if long.empty:
        return []
    per = long.groupby(["metric"])[column].nunique()
    shared = [m for m in per.index if per[m] == n_items]
    return sorted(shared, key=lambda m: (m not in METRICS, m))


def params_table(facts: list[VersionFacts]) -> pd.DataFrame:
    """Each version's hyperparameters, one column per version; "–" where it has none."""
    return _side_by_side({f.ref: {k: cell_text(v) for k, v in f.version.params.items()}
                          for f in facts}, "parameter")


def _side_by_side(columns: dict[str, dict[str, str]], key: str) -> pd.DataFrame:
    keys = list(dict.fromkeys(k for values in columns.values() for k in values))
    frame = pd.DataFrame({name: [values.get(k, "–") for k in keys]
                          for name, values in columns.items()}, index=keys)
    return frame.rename_axis(key).reset_index()


# -- searches -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SearchFacts:
    """One search (job), its trials and the version it registered (if any)."""

    job: JobPublic
    trials: pd.DataFrame
    version: VersionPublic | None
    dataset_id: int | None

    @property
    def label(self) -> str:
        return search_label(self.job)


def search_label(job: JobPublic) -> str:
    return f"job {job.id}: {job.model}"


def searches(*, session: Session) -> list[JobPublic]:
    """Searches that have trials to compare: finished, cancelled or failed ones (a running
    one shows on Train)."""
    return [j for j in read_jobs(session=session, limit=MAX_JOBS, by="ui")
            if j.state.is_terminal]


def load_searches(ids: list[int], *, session: Session) -> tuple[list[SearchFacts], list[int]]:
    by_id = {j.id: j for j in searches(session=session)}
    found, unknown = [], []
    for job_id in ids:
        job = by_id.get(job_id)
        if job is None:
            unknown.append(job_id)
            continue
        version = None
        if job.version_id is not None:
            mv = version_by_id(job.version_id, session=session)
            if mv is not None:
                version = next((v for v in list_versions(job.model, session=session)
                                if v.version == mv.version), None)
        dataset_id = ledger.get_job(job.id, session=session).dataset_id
        found.append(SearchFacts(job, trials_frame(job.id, session=session), version,
                                 dataset_id))
    return found, unknown


def _best_trial(facts: SearchFacts) -> pd.Series | None:
    scored = facts.trials[(facts.trials["status"] == TrialState.OK)
                          & facts.trials["score"].notna()]
    if scored.empty:
        return None
    metric = METRICS.get(facts.job.metric)
    ascending = metric is not None and not metric.greater_is_better
    return scored.sort_values("score", ascending=ascending).iloc[0]


def search_overview(facts: list[SearchFacts]) -> pd.DataFrame:
    """What each search was and what it found, one column per search."""
    columns = {}
    for f in facts:
        job, states = f.job, f.trials["status"].astype(str).value_counts()
        best = _best_trial(f)
        metric = METRICS.get(job.metric)
        columns[f.label] = {
            "model": job.model, "state": str(job.state), "task": job.task,
            "metric": f"{job.metric} ({metric.direction})" if metric else job.metric,
            "dataset": cell_text(f.dataset_id),
            "target": job.target,
            "trials (scored / pruned / failed)": " / ".join(
                str(int(states.get(s, 0))) for s in TrialState),
            "best trial (CV score)": ("–" if best is None else
                                      f"{best['score']:.4f} · trial {int(best['trial'])} "
                                      f"({best['estimator']})"),
            "registered version": ("–" if f.version is None else
                                   f"{job.model}:{f.version.version}"),
            "registered score": ("–" if f.version is None else
                                 f"{_score(f.version.score)} "
                                 f"{registered_score_label(job.metric, f.version.estimator)}"),
            "started": (f"{job.created_at:%Y-%m-%d %H:%M} UTC" if job.created_at else "–"),
        }
    return _side_by_side(columns, FIELD)


def search_settings(facts: list[SearchFacts]) -> pd.DataFrame:
    """Each search's settings (budget, search method, estimators…), one column per search."""
    return _side_by_side({f.label: {k: cell_text(v) for k, v in f.job.settings.items()}
                          for f in facts}, "setting")


def best_per_family(facts: list[SearchFacts]) -> pd.DataFrame:
    """Long table: search, metric, estimator family, best CV score of its scored trials, and
    how many trials it ran (a family with no scored trial has no score but is listed)."""
    rows = []
    for f in facts:
        metric = METRICS.get(f.job.metric)
        for family, group in f.trials.groupby("estimator"):
            scored = group[(group["status"] == TrialState.OK) & group["score"].notna()]
            best = None
            if not scored.empty:
                best = (scored["score"].max() if metric is None or metric.greater_is_better
                        else scored["score"].min())
            rows.append({"search": f.label, "metric": f.job.metric, "family": str(family),
                         "best": best, "trials": len(group), "scored": len(scored)})
    return pd.DataFrame(rows, columns=["search", "metric", "family", "best", "trials",
                                       "scored"])
