"""Read-only views the pages and the CLI show, served over REST too (API parity): a version's
suggestions, feature importance and lineage graph, every model's deployment, and the
estimator catalogue with what `search_space` may override. Thin calls into
core.usecases.inspection on the request's session."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from app.api.deps import SessionDep
from app.api.schemas import MAX_VERSION
from core.deploy.public import DeploymentState
from core.registry import check_model_name
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
