"""REST endpoints for experiment tracking (ARCHITECTURE.md "Experiments and runs"): list and
create experiments, list runs with filters, start / log to / end a run, compare runs, list
and download a run's artifacts.

Thin calls into `core.tracking`; bad input is a 422 naming the field, an unknown run or
experiment a 404, logging to an ended run a 409. An artifact path is resolved by
`core.tracking.resolve_artifact` alone: any path that does not name a file inside the run's
root, in whatever encoding, is a 404."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field

from app.api.deps import SessionDep
from core import tracking
from core.tracking.filters import EXAMPLE
from core.tracking.public import (
    ArtifactPublic,
    ExperimentPublic,
    RunComparison,
    RunDetailPublic,
    RunPage,
)
from core.tracking.states import RunStatus
from core.tracking.views import MAX_COMPARE, MAX_LIMIT, SORT_HELP

router = APIRouter(tags=["tracking"])
MAX_ID = 2**31 - 1
ParamValue = str | int | float | bool


# -- request bodies ---------------------------------------------------------------------------
class ExperimentCreate(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)


class RunCreate(BaseModel):
    experiment: str = Field(min_length=1, max_length=200,
                            description="Created on first use.")
    name: str | None = Field(default=None, max_length=250)
    parent_run_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    dataset_id: int | None = Field(default=None, ge=1, le=MAX_ID,
                                   description="Lineage: the dataset the run used.")
    params: dict[str, ParamValue] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)


class MetricIn(BaseModel):
    key: str = Field(min_length=1, max_length=250)
    value: float
    step: int | None = Field(default=None, ge=0, le=MAX_ID,
                             description="Omitted: one after the key's last step (0 first).")
    timestamp: datetime | None = Field(default=None, description="Omitted: now.")


class RunLog(BaseModel):
    params: dict[str, ParamValue] = Field(default_factory=dict,
                                          description="Logged once per run; the same value "
                                                      "again is a no-op, another is a 409.")
    metrics: list[MetricIn] = Field(default_factory=list, max_length=10_000)
    tags: dict[str, str] = Field(default_factory=dict, description="Replace earlier values.")


class RunEnd(BaseModel):
    status: RunStatus = Field(default=RunStatus.FINISHED,
                              description="FINISHED, FAILED or KILLED.")


class RunCompare(BaseModel):
    runs: list[Annotated[int, Field(ge=1, le=MAX_ID)]] = Field(min_length=1,
                                                                max_length=MAX_COMPARE)


# -- experiments ------------------------------------------------------------------------------
@router.get("/v1/experiments", response_model=list[ExperimentPublic])
def experiments(session: SessionDep) -> list[ExperimentPublic]:
    return tracking.list_experiments(session=session)


@router.post("/v1/experiments", status_code=201, response_model=ExperimentPublic)
def create_experiment(body: ExperimentCreate, session: SessionDep) -> ExperimentPublic:
    exp = tracking.create_experiment(body.name, session=session, description=body.description)
    return tracking.experiment_public(exp, session=session)


_FILTER = Query(description=f"KIND.KEY OP VALUE, repeatable, all must hold ({EXAMPLE}).")
_SORT = Query(max_length=300, description=f"One of {SORT_HELP}.")
_LIMIT = Query(ge=1, le=MAX_LIMIT)
_OFFSET = Query(ge=0, le=MAX_ID)
_STATUS = Query(description="RUNNING, FINISHED, FAILED or KILLED; repeatable.")
_TOP = Query(description="Leave out child runs (a search's trials).")
Filters = Annotated[list[str], _FILTER]
Statuses = Annotated[list[RunStatus], _STATUS]
Sort = Annotated[str, _SORT]
Limit = Annotated[int, _LIMIT]
Offset = Annotated[int, _OFFSET]
TopLevel = Annotated[bool, _TOP]


@router.get("/v1/experiments/{name}/runs", response_model=RunPage)
def experiment_runs(name: str, session: SessionDep, status: Statuses = [],  # noqa: B006
                    filter: Filters = [],  # noqa: A002, B006 (the query's name; not mutated)
                    sort: Sort = "-start_time", limit: Limit = 100, offset: Offset = 0,
                    top_level: TopLevel = False) -> RunPage:
    return tracking.list_runs(session=session, experiment=name, status=status, filters=filter,
                              sort=sort, limit=limit, offset=offset, top_level=top_level)


# -- runs -------------------------------------------------------------------------------------
@router.get("/v1/runs", response_model=RunPage)
def runs(session: SessionDep,
         experiment: Annotated[list[str], Query(description="Repeatable.")] = [],  # noqa: B006
         status: Statuses = [],  # noqa: B006
         filter: Filters = [],  # noqa: A002, B006
         sort: Sort = "-start_time", limit: Limit = 100, offset: Offset = 0,
         top_level: TopLevel = False,
         parent_run_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
         job_id: Annotated[int | None, Query(ge=1, le=MAX_ID, description="Only the runs of "
                                             "this training job (its run and trials).")] = None
         ) -> RunPage:
    """Runs across experiments (or the named ones), the Runs page's listing."""
    return tracking.list_runs(session=session, experiment=experiment, status=status,
                              filters=filter, sort=sort, limit=limit, offset=offset,
                              top_level=top_level, parent_run_id=parent_run_id, job_id=job_id)


@router.post("/v1/runs", status_code=201, response_model=RunDetailPublic)
def start_run(body: RunCreate, session: SessionDep) -> RunDetailPublic:
    run = tracking.create_run(session=session, experiment=body.experiment, name=body.name,
                              parent_run_id=body.parent_run_id, dataset_id=body.dataset_id,
                              params=body.params, tags=body.tags)
    return tracking.get_run(run.id, session=session)


@router.post("/v1/runs/compare", response_model=RunComparison)
def compare(body: RunCompare, session: SessionDep) -> RunComparison:
    return tracking.compare_runs(body.runs, session=session)


@router.get("/v1/runs/{run_id}", response_model=RunDetailPublic)
def run(run_id: int, session: SessionDep) -> RunDetailPublic:
    return tracking.get_run(run_id, session=session)


@router.post("/v1/runs/{run_id}/log", response_model=RunDetailPublic)
def log(run_id: int, body: RunLog, session: SessionDep) -> RunDetailPublic:
    points = [tracking.MetricPoint(m.key, m.value, m.step, m.timestamp) for m in body.metrics]
    tracking.log_to_run(run_id, session=session, params=body.params, metrics=points,
                        tags=body.tags)
    return tracking.get_run(run_id, session=session)


@router.post("/v1/runs/{run_id}/end", response_model=RunDetailPublic)
def end(run_id: int, session: SessionDep, body: RunEnd | None = None) -> RunDetailPublic:
    tracking.end_run(run_id, (body or RunEnd()).status, session=session)
    return tracking.get_run(run_id, session=session)


@router.get("/v1/runs/{run_id}/artifacts", response_model=list[ArtifactPublic])
def artifacts(run_id: int, session: SessionDep) -> list[ArtifactPublic]:
    return tracking.list_artifacts(run_id, session=session)


@router.get("/v1/runs/{run_id}/artifacts/{path:path}", response_class=Response,
            responses={200: {"content": {"application/octet-stream": {}},
                             "description": "The file's bytes."}})
def artifact(run_id: int, path: str, session: SessionDep) -> Response:
    name, data = tracking.read_artifact(run_id, path, session=session)  # any artifact store
    # a download, never a page of this origin: a logged HTML file must not run as one
    return Response(data, media_type="application/octet-stream",
                    headers={"Content-Disposition": f"attachment; filename*=utf-8''{quote(name)}",
                             "X-Content-Type-Options": "nosniff"})
