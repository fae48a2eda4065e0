"""Reading runs: one page of a filtered, sorted listing across experiments; one run with its
metric histories; runs compared side by side. Read functions never commit."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import asc, desc, nulls_last
from sqlalchemy.orm import aliased
from sqlmodel import Session, func, select

from core.errors import NotFoundError
from core.store import Experiment, Run, RunLatestMetric, RunMetric, RunParam, RunTag
from core.tracking.checks import FILTERS_MAX, BadInput, check_batch, check_key
from core.tracking.experiments import get_experiment
from core.tracking.filters import all_of, parse_filter
from core.tracking.public import (
    ComparedMetric,
    ComparedParam,
    MetricPoint,
    RunComparison,
    RunDetailPublic,
    RunPage,
    RunPublic,
)
from core.tracking.runs import get_run_row
from core.tracking.states import RunStatus

MAX_LIMIT = 1000
MAX_COMPARE = 100
_SORT = re.compile(r"\s*([-+]?)\s*(.+?)\s*")
_COLUMNS = {"start_time": Run.start_time, "end_time": Run.end_time, "name": Run.name,
            "status": Run.status, "id": Run.id, "experiment": Experiment.name}
SORT_HELP = ("start_time, end_time, name, status, id, experiment, metrics.KEY or params.KEY, "
             "with '-' in front for descending (e.g. -metrics.roc_auc)")


def list_runs(*, session: Session, experiment: str | Sequence[str] | None = None,
              status: RunStatus | str | Sequence[RunStatus | str] | None = None,
              filters: Sequence[str] = (), sort: str = "-start_time", limit: int = 100,
              offset: int = 0, parent_run_id: int | None = None,
              top_level: bool = False, job_id: int | None = None) -> RunPage:
    """One page of runs across experiments (or the named ones), newest first by default.

    Args:
        experiment: one name or several; an unknown name is a NotFoundError.
        status: one status or several (RUNNING, FINISHED, FAILED, KILLED).
        filters: `params.KEY OP VALUE`, `metrics.KEY OP NUMBER`, `tags.KEY OP VALUE`, all
            of which must hold (see `core.tracking.filters`).
        sort: a field, '-' in front for descending (see SORT_HELP); runs lacking the sorted
            metric or param come last either way; ties go newest first.
        limit, offset: the page (limit 1–1000).
        parent_run_id: only the child runs (trials) of this run.
        top_level: only runs without a parent (leave out trials).
        job_id: only the runs of this training job (its run and its trials' child runs).
    Raises:
        InputError naming the bad argument; NotFoundError for an unknown experiment.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise BadInput(f"limit: {limit!r} is not a page size in [1, {MAX_LIMIT}].")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise BadInput(f"offset: {offset!r} is not a whole number >= 0.")
    query = select(Run, Experiment.name).join(Experiment, Experiment.id == Run.experiment_id)
    names = [experiment] if isinstance(experiment, str) else list(experiment or [])
    if names:
        ids = [get_experiment(n, session=session).id for n in names]
        query = query.where(Run.experiment_id.in_(ids))
    statuses = _statuses(status)
    if statuses:
        query = query.where(Run.status.in_(statuses))
    filters = [filters] if isinstance(filters, str) else list(filters)
    check_batch("filter", filters, FILTERS_MAX)
    where = all_of([parse_filter(f) for f in filters])
    if where is not None:
        query = query.where(where)
    if parent_run_id is not None:
        query = query.where(Run.parent_run_id == parent_run_id)
    if top_level:
        query = query.where(Run.parent_run_id.is_(None))
    if job_id is not None:
        query = query.where(Run.job_id == job_id)
    total = session.exec(select(func.count()).select_from(query.subquery())).one()
    query = _sorted(query, sort)
    rows = session.exec(query.offset(offset).limit(limit)).all()
    runs = _publics(session, [(run, name) for run, name in rows])
    end = offset + len(runs)
    return RunPage(runs=runs, total=total, limit=limit, offset=offset,
                   next_offset=end if end < total else None)


def get_run(run_id: int, *, session: Session) -> RunDetailPublic:
    """One run with every metric's history (by step, then time) and its child runs."""
    run = get_run_row(run_id, session=session)
    exp = session.get(Experiment, run.experiment_id)
    (public,) = _publics(session, [(run, exp.name if exp else "")])
    history: dict[str, list[MetricPoint]] = defaultdict(list)
    for m in session.exec(select(RunMetric).where(RunMetric.run_id == run_id)
                          .order_by(RunMetric.key, RunMetric.step, RunMetric.timestamp,
                                    RunMetric.id)):
        history[m.key].append(MetricPoint(step=m.step, value=m.value, timestamp=m.timestamp))
    children = session.exec(select(Run.id).where(Run.parent_run_id == run_id)
                            .order_by(Run.id)).all()
    return RunDetailPublic(**public.model_dump(), metric_history=dict(history),
                           child_run_ids=list(children))


def compare_runs(run_ids: Sequence[int], *, session: Session) -> RunComparison:
    """Params and latest metrics of the runs side by side, in the order asked (repeats
    dropped); keys sorted, `differs` true where the runs disagree (a missing value counts)."""
    ids = list(dict.fromkeys(run_ids))
    if not ids or len(ids) > MAX_COMPARE:
        raise BadInput(f"runs: give 1–{MAX_COMPARE} run ids to compare, got {len(ids)}.")
    rows = {run.id: (run, name) for run, name in session.exec(
        select(Run, Experiment.name).join(Experiment, Experiment.id == Run.experiment_id)
        .where(Run.id.in_(ids)))}
    missing = [i for i in ids if i not in rows]
    if missing:
        raise NotFoundError(f"runs: no run {', '.join(map(str, missing))}. List runs with "
                            "GET /v1/runs or `workbench runs`.")
    runs = _publics(session, [rows[i] for i in ids])

    def side_by_side(of: str) -> list[tuple[str, list[Any]]]:
        keys = sorted({k for r in runs for k in getattr(r, of)})
        return [(k, [getattr(r, of).get(k) for r in runs]) for k in keys]

    return RunComparison(
        runs=runs,
        params=[ComparedParam(key=k, values=v, differs=len(set(v)) > 1)
                for k, v in side_by_side("params")],
        metrics=[ComparedMetric(key=k, values=v, differs=len(set(v)) > 1)
                 for k, v in side_by_side("metrics")])


def _statuses(status: Any) -> list[str]:
    given = [status] if isinstance(status, str) else list(status or [])
    known = [s.value for s in RunStatus]
    for s in given:
        if str(s).upper() not in known:
            raise BadInput(f"status: {s!r} is not among {', '.join(known)}.")
    return [str(s).upper() for s in given]


def _sorted(query: Any, sort: str) -> Any:
    m = _SORT.fullmatch(sort) if isinstance(sort, str) and sort.strip() else None
    if m is None:
        raise BadInput(f"sort: {sort!r} is not a sort order; use {SORT_HELP}.")
    sign, field = m.groups()
    way = desc if sign == "-" else asc
    ties = (Run.start_time.desc(), Run.id.desc())
    if field in _COLUMNS:
        return query.order_by(nulls_last(way(_COLUMNS[field])), *ties)
    kind, _, key = field.partition(".")
    if kind == "metrics" and key:
        check_key(key, "sort")
        lm = aliased(RunLatestMetric)
        return (query.outerjoin(lm, (lm.run_id == Run.id) & (lm.key == key))
                .order_by(nulls_last(way(lm.value)), *ties))
    if kind == "params" and key:
        check_key(key, "sort")
        p = aliased(RunParam)
        return (query.outerjoin(p, (p.run_id == Run.id) & (p.key == key))
                .order_by(nulls_last(way(p.value_num)), nulls_last(way(p.value)), *ties))
    raise BadInput(f"sort: {sort!r} is not a sort order; use {SORT_HELP}.")


def _publics(session: Session, rows: list[tuple[Run, str]]) -> list[RunPublic]:
    """RunPublic of each run, with its params, latest metrics and tags (three queries)."""
    ids = [run.id for run, _ in rows]
    params: dict[int, dict[str, str]] = defaultdict(dict)
    metrics: dict[int, dict[str, float]] = defaultdict(dict)
    tags: dict[int, dict[str, str]] = defaultdict(dict)
    if ids:
        for p in session.exec(select(RunParam).where(RunParam.run_id.in_(ids))
                              .order_by(RunParam.key)):
            params[p.run_id][p.key] = p.value
        for m in session.exec(select(RunLatestMetric).where(RunLatestMetric.run_id.in_(ids))
                              .order_by(RunLatestMetric.key)):
            metrics[m.run_id][m.key] = m.value
        for t in session.exec(select(RunTag).where(RunTag.run_id.in_(ids))
                              .order_by(RunTag.key)):
            tags[t.run_id][t.key] = t.value
    return [run_public(run, name, params=params[run.id], metrics=metrics[run.id],
                       tags=tags[run.id]) for run, name in rows]


def run_public(run: Run, experiment: str, *, params: dict[str, str],
               metrics: dict[str, float], tags: dict[str, str]) -> RunPublic:
    duration = (run.end_time - run.start_time).total_seconds() \
        if run.end_time is not None else None
    return RunPublic(id=run.id, experiment=experiment, name=run.name, status=run.status,
                     source=run.source, start_time=run.start_time, end_time=run.end_time,
                     duration_s=duration, parent_run_id=run.parent_run_id,
                     dataset_id=run.dataset_id, job_id=run.job_id, version_id=run.version_id,
                     params=params, metrics=metrics, tags=tags)
