"""Registry lifecycle: move a version between stages (None, Staging, Production, Archived).

Production is the `production` alias and the deployment's stable version follows it, so a
move to Production changes what the model's endpoint serves; see core/usecases/stages.py for
the rules and docs/lifecycle/stages.md for the decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from app.api.deps import PrincipalDep, ServingDep, SessionDep
from app.api.errors import ERRORS
from app.api.schemas import MAX_VERSION
from core.enums import Stage
from core.registry import check_model_name
from core.registry.public import StageChange
from core.usecases.stages import UNSET, set_stage

router = APIRouter(tags=["models"])


class StageRequest(BaseModel):
    stage: Stage = Field(description="None, Staging, Production or Archived.")
    archive_existing: bool = Field(
        default=False, description="Moving to Production: archive the version it replaces, "
                                   "in the same transaction.")
    reason: str = Field(default="", max_length=2000)
    expected_production: int | None = Field(
        default=None, ge=1, le=MAX_VERSION,
        description="Refuse (409) unless this version is in Production when the move runs "
                    "(null: unless none is). Absent: the Production seen when the request "
                    "started. A guard against concurrent moves (a page sends what it showed).")


@router.post("/v1/models/{name}/versions/{version}/stage", response_model=StageChange,
             responses=ERRORS)
def move_stage(name: str, version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
               body: StageRequest, serving: ServingDep, session: SessionDep, principal: PrincipalDep
               ) -> StageChange:
    """Move a version to a stage; 409 when the move is not allowed (Archived to Production,
    the serving version out of Production, a concurrent change of Production), with what to
    do instead."""
    check_model_name(name)
    expected = body.expected_production if "expected_production" in body.model_fields_set \
        else UNSET
    return set_stage(name, version, body.stage, session=session,
                     archive_existing=body.archive_existing, reason=body.reason,
                     actor=principal.actor,
                     expected_production=expected, verify=serving.warm)
