"""Liveness (`/health`, open even with a token set) and the Prometheus scrape (`/metrics`)."""

from __future__ import annotations

import os
import re

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, Field

from app.api.deps import PrincipalDep, ServingDep
from app.api.version import VERSION
from core.deploy.metrics import CONTENT_TYPE
from core.identity import DEFAULT_WORKSPACE, PrincipalKind

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    version: str
    models_loaded: list[str] = Field(description=(
        '"name:version" of the caller\'s workspace held in this worker\'s memory; empty for '
        "an anonymous caller when sign-in is configured (names are not public)."))
    models_loaded_count: int = Field(description=(
        "How many models are held: the caller's workspace's, or every workspace's for an "
        "anonymous caller (a count, never names)."))
    pid: int | None = Field(default=None, description=(
        "The server process that answered: with `workbench serve --workers N`, which worker "
        "(connections are spread over them). Null for an anonymous caller when sign-in is "
        "configured (a process id helps an attacker more than a load balancer)."))


@router.get("/health")
def health(request: Request, serving: ServingDep) -> Health:
    """Liveness for anyone (load balancers, orchestrators' probes); the loaded models' names
    and the answering process's id only for a signed-in caller (or anyone when sign-in is
    not configured), and only its own workspace's names."""
    if request.scope.get("anonymous"):
        count = len(request.app.state.serving.cache.held())
        return Health(status="ok", version=VERSION, models_loaded=[], models_loaded_count=count)
    loaded = serving.cache.loaded()
    return Health(status="ok", version=VERSION, models_loaded=loaded,
                  models_loaded_count=len(loaded), pid=os.getpid())


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(serving: ServingDep, principal: PrincipalDep) -> Response:
    """Prometheus text: every server worker's counts summed (core/deploy/metrics.py). A user
    or key sees its own workspace's series only; the operator and WORKBENCH_API_TOKEN (what
    Prometheus scrapes with) see every workspace's."""
    body = serving.metrics.exposition()
    if principal.kind not in (PrincipalKind.TOKEN, PrincipalKind.LOCAL):
        body = of_workspace(body.decode(), principal.workspace).encode()
    return Response(body, media_type=CONTENT_TYPE)


_MODEL_LABEL = re.compile(r'model="([^"]*)"')


def of_workspace(text: str, workspace: str) -> str:
    """The exposition without the series of other workspaces' models (labelled
    `WORKSPACE/NAME` outside `default`, the bare name inside it)."""
    def mine(line: str) -> bool:
        found = _MODEL_LABEL.search(line)
        if found is None or line.startswith("#"):
            return True
        owner, slash, _ = found.group(1).partition("/")
        return (owner if slash else DEFAULT_WORKSPACE) == workspace

    return "\n".join(line for line in text.split("\n") if mine(line))
