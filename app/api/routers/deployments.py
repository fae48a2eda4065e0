"""Deployments: the rule and live figures of a model, deploy (canary or shadow), promote and
roll back. Every answer is the deployment document after the change."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.api.deps import ServingDep
from app.api.errors import ERRORS
from app.api.schemas import DeployRequest, ReasonRequest
from core.deploy import deployments as dep
from core.deploy.service import Serving
from core.deploy.telemetry import stats_since
from core.registry.versions import check_model_name

router = APIRouter(tags=["deployments"], responses=ERRORS)


def _deployment_doc(serving: Serving, name: str) -> dict[str, Any]:
    st = serving.state(name, fresh=True)
    doc = st.to_dict()
    live = {}
    for label, v in (("stable", st.stable), ("candidate", st.candidate)):
        if v is not None:
            since = st.step_started_at if label == "candidate" else None
            live[label] = {"version": v, **stats_since(name, v, since).summary(),
                           "load_error": serving.cache.failed.get((name, v))}
    doc["live"] = live
    doc["history"] = dep.history(name, limit=20)
    return doc


def _metrics_now(name: str, st: dep.DeploymentState) -> dict[str, Any]:
    out = {}
    for label, v in (("stable", st.stable), ("candidate", st.candidate)):
        if v is not None:
            s = stats_since(name, v, st.step_started_at).summary()
            s.pop("predictions", None)
            out[label] = {"version": v, **s}
    return out


@router.get("/v1/deployments/{name}")
def get_deployment(name: str, serving: ServingDep) -> dict[str, Any]:
    check_model_name(name)
    serving.flush()
    return _deployment_doc(serving, name)


@router.post("/v1/deployments/{name}")
def post_deployment(name: str, body: DeployRequest, serving: ServingDep) -> dict[str, Any]:
    check_model_name(name)
    dep.deploy(name, body.version, body.percent, mode=body.mode, steps=body.steps,
               guard_rails=body.guard_rails, auto_advance=body.auto_advance,
               reason=body.reason, actor="api", warm=serving.warm)
    serving.forget(name)
    return _deployment_doc(serving, name)


@router.post("/v1/deployments/{name}/promote")
def post_promote(name: str, serving: ServingDep, body: ReasonRequest | None = None
                 ) -> dict[str, Any]:
    check_model_name(name)
    serving.flush()
    st = serving.state(name, fresh=True)
    metrics = _metrics_now(name, st)
    dep.promote(name, actor="api", reason=body.reason if body else "", metrics=metrics,
                expect_candidate=st.candidate)  # the one these metrics describe
    serving.forget(name)
    return _deployment_doc(serving, name)


@router.post("/v1/deployments/{name}/rollback")
def post_rollback(name: str, serving: ServingDep, body: ReasonRequest | None = None
                  ) -> dict[str, Any]:
    check_model_name(name)
    st = serving.state(name, fresh=True)
    dep.rollback(name, actor="api", reason=body.reason if body else "",
                 metrics=_metrics_now(name, st), expect_candidate=st.candidate)
    serving.forget(name)
    return _deployment_doc(serving, name)
