"""Deployments: the rule and live figures of a model, deploy (canary or shadow), promote and
roll back. Every answer is the deployment document after the change (`DeploymentPublic`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlmodel import Session

from app.api.deps import PrincipalDep, ServingDep, SessionDep
from app.api.errors import ERRORS
from app.api.schemas import DeployRequest, ReasonRequest
from core.deploy import deployments as dep
from core.deploy.public import DeploymentPublic, DeploymentState, VersionLive
from core.deploy.service import Serving
from core.deploy.telemetry import stats_since
from core.registry import check_model_name

router = APIRouter(tags=["deployments"], responses=ERRORS)


def _deployment_doc(serving: Serving, name: str, session: Session) -> DeploymentPublic:
    st = serving.state(name, fresh=True)
    live = {}
    for label, v in (("stable", st.stable), ("candidate", st.candidate)):
        if v is not None:
            since = st.step_started_at if label == "candidate" else None
            stats = stats_since(name, v, since, session=session)
            live[label] = VersionLive(version=v, **stats.summary(),
                                      load_error=serving.cache.failed.get((name, v)))
    return DeploymentPublic(**dict(st), live=live,
                            history=dep.history(name, session=session, limit=20))


def _metrics_now(name: str, st: DeploymentState, session: Session) -> dict[str, Any]:
    """The live figures an audit event of a promote or rollback carries."""
    out = {}
    for label, v in (("stable", st.stable), ("candidate", st.candidate)):
        if v is not None:
            s = stats_since(name, v, st.step_started_at, session=session).summary()
            s.pop("predictions", None)
            out[label] = {"version": v, **s}
    return out


@router.get("/v1/deployments/{name}")
def get_deployment(name: str, serving: ServingDep, session: SessionDep) -> DeploymentPublic:
    check_model_name(name)
    serving.flush()
    return _deployment_doc(serving, name, session)


@router.post("/v1/deployments/{name}")
def post_deployment(name: str, body: DeployRequest, serving: ServingDep, session: SessionDep,
                    principal: PrincipalDep
                    ) -> DeploymentPublic:
    check_model_name(name)
    st = dep.deploy(name, body.version, body.percent, session=session, mode=body.mode,
                    steps=body.steps, guard_rails=body.guard_rails,
                    auto_advance=body.auto_advance, reason=body.reason, actor=principal.actor,
                    warm=serving.warm, runtime=body.runtime)
    serving.use_runtimes(st)  # this process answers with the chosen runtime at once
    serving.forget(name)
    return _deployment_doc(serving, name, session)


@router.post("/v1/deployments/{name}/promote")
def post_promote(name: str, serving: ServingDep, session: SessionDep, principal: PrincipalDep,
                 body: ReasonRequest | None = None) -> DeploymentPublic:
    check_model_name(name)
    serving.flush()
    st = serving.state(name, fresh=True)
    metrics = _metrics_now(name, st, session)
    dep.promote(name, session=session, actor=principal.actor, reason=body.reason if body else "",
                metrics=metrics, expect_candidate=st.candidate)  # the one these describe
    serving.forget(name)
    return _deployment_doc(serving, name, session)


@router.post("/v1/deployments/{name}/rollback")
def post_rollback(name: str, serving: ServingDep, session: SessionDep, principal: PrincipalDep,
                  body: ReasonRequest | None = None) -> DeploymentPublic:
    check_model_name(name)
    st = serving.state(name, fresh=True)
    dep.rollback(name, session=session, actor=principal.actor, reason=body.reason if body else "",
                 metrics=_metrics_now(name, st, session), expect_candidate=st.candidate)
    serving.forget(name)
    return _deployment_doc(serving, name, session)
