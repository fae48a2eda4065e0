"""API parity: what the pages and the CLI do that had no route. Read-only views (a version's
suggestions, feature importance and lineage graph, every model's deployment, the estimator
catalogue with what `search_space` may override, the live job workers) and the actions of
`workbench alias | history | accept | seed` and the Deployments page's rollout step. Thin calls
into core on the request's session."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from app.api.deps import PrincipalDep, ServingDep, SessionDep
from app.api.schemas import MAX_VERSION
from core.deploy import deployments as dep
from core.deploy.public import DeploymentState
from core.jobs.worker import live_workers
from core.registry import (
    AliasEventPublic,
    LibraryMismatch,
    accept_library_mismatch,
    alias_history,
    check_model_name,
    library_mismatch,
)
from core.usecases.aliases import set_alias
from core.usecases.inspection import (
    CatalogEntry,
    Importance,
    Lineage,
    Suggestions,
    catalog,
    list_deployments,
    version_importance,
    version_lineage,
    version_suggestions,
)

router = APIRouter()
VersionPath = Annotated[int, Path(ge=1, le=MAX_VERSION)]


class WorkerPublic(BaseModel):
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime


class AliasRequest(BaseModel):
    version: int = Field(ge=1, le=MAX_VERSION)
    reason: str = Field(default="", max_length=2000)


class AliasMove(BaseModel):
    model: str
    alias: str
    version: int
    previous_version: int | None


class ReasonBody(BaseModel):
    reason: str = Field(default="", max_length=2000)


class Accepted(BaseModel):
    model: str
    version: int
    accepted_on: str | None
    library_mismatch: LibraryMismatch | None


class PercentRequest(BaseModel):
    percent: float = Field(ge=0, le=100)
    reason: str = Field(default="", max_length=2000)
    expect_candidate: int | None = Field(default=None, ge=1, le=MAX_VERSION,
                                         description="Refuse (409) unless this version is "
                                                     "still the candidate.")


class SampleStored(BaseModel):
    dataset: str
    id: int
    new: bool


@router.get("/v1/models/{name}/versions/{version}/suggestions", tags=["models"],
            response_model=Suggestions)
def suggestions(name: str, version: VersionPath, session: SessionDep) -> Suggestions:
    """Advice drawn from the search that produced the version."""
    return version_suggestions(check_model_name(name), version, session=session)


@router.get("/v1/models/{name}/versions/{version}/importance", tags=["models"],
            response_model=Importance)
def importance(name: str, version: VersionPath, session: SessionDep) -> Importance:
    """Permutation feature importance measured when the version was trained."""
    return version_importance(check_model_name(name), version, session=session)


@router.get("/v1/models/{name}/versions/{version}/lineage", tags=["models"],
            response_model=Lineage, response_model_by_alias=True)
def lineage(name: str, version: VersionPath, session: SessionDep) -> Lineage:
    """A graph document: dataset → job → version → the versions it was retrained from."""
    return version_lineage(check_model_name(name), version, session=session)


@router.get("/v1/deployments", tags=["deployments"], response_model=list[DeploymentState])
def deployments(session: SessionDep) -> list[DeploymentState]:
    """The traffic rule of every model with a production version or a candidate."""
    return list_deployments(session=session)


@router.get("/v1/catalog", tags=["jobs"], response_model=list[CatalogEntry])
def estimators(task: Annotated[Literal["binary", "multiclass", "classification", "regression"]
                               | None, Query()] = None) -> list[CatalogEntry]:
    """The estimators a search may use, their known-good defaults, and every parameter a
    `search_space` override may set with its allowed range or choices."""
    return catalog(task)


@router.get("/v1/workers", tags=["jobs"], response_model=list[WorkerPublic])
def workers(session: SessionDep) -> list[WorkerPublic]:
    """Job workers alive now (heartbeat within the timeout), as the Jobs page shows them."""
    return [WorkerPublic(id=w.id, host=w.host, pid=w.pid, started_at=w.started_at,
                         heartbeat_at=w.heartbeat_at) for w in live_workers(session=session)]


# -- aliases, library acceptance (workbench alias | history | accept) ---------------------------
@router.post("/v1/models/{name}/aliases/{alias}", tags=["models"], response_model=AliasMove)
def move_alias(name: str, alias: str, body: AliasRequest, session: SessionDep,
               principal: PrincipalDep) -> AliasMove:
    """Point ALIAS (e.g. production, staging) of NAME at a version; the move is audited."""
    event = set_alias(check_model_name(name), body.version, alias, session=session,
                      actor=principal.actor, reason=body.reason)
    return AliasMove(model=name, alias=alias, version=body.version,
                     previous_version=event.from_version)


@router.get("/v1/models/{name}/aliases/history", tags=["models"],
            response_model=list[AliasEventPublic])
def aliases_history(name: str, session: SessionDep) -> list[AliasEventPublic]:
    """Every alias move of a model: who, when, from which version to which, and why."""
    return alias_history(check_model_name(name), session=session)


@router.post("/v1/models/{name}/versions/{version}/accept", tags=["models"],
             response_model=Accepted)
def accept(name: str, version: VersionPath, session: SessionDep, principal: PrincipalDep,
           body: ReasonBody | None = None) -> Accepted:
    """Let a version saved by another scikit-learn load on this one (audited)."""
    mv = accept_library_mismatch(check_model_name(name), version, session=session,
                                 actor=principal.actor, reason=body.reason if body else "")
    return Accepted(model=name, version=version, accepted_on=mv.accepted_sklearn,
                    library_mismatch=library_mismatch(mv))


# -- the rollout step and the samples -----------------------------------------------------------
@router.post("/v1/deployments/{name}/percent", tags=["deployments"],
             response_model=DeploymentState)
def rollout_step(name: str, body: PercentRequest, serving: ServingDep, session: SessionDep,
                 principal: PrincipalDep
                 ) -> DeploymentState:
    """Move the candidate's share of traffic (the Deployments page's "Next step");
    `expect_candidate` refuses with 409 when the candidate changed meanwhile."""
    st = dep.set_percent(check_model_name(name), body.percent, session=session,
                         actor=principal.actor,
                         reason=body.reason, expect_candidate=body.expect_candidate)
    serving.forget(name)
    return st


@router.post("/v1/datasets/samples", tags=["datasets"], response_model=list[SampleStored])
def seed(session: SessionDep, principal: PrincipalDep) -> list[SampleStored]:
    """Store the sample datasets (`workbench seed`; the same content is stored once)."""
    from core.data.datasets import ingest_path
    from core.samples import sample_files

    rows = []
    for path in sample_files():
        stored = ingest_path(path, session=session, actor=principal.actor)
        rows.append(SampleStored(dataset=stored.dataset.name, id=stored.dataset.id,
                                 new=stored.created))
    return rows
