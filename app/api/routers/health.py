"""Liveness (`/health`, open even with a token set) and the Prometheus scrape (`/metrics`)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel

from app.api.deps import ServingDep
from app.api.version import VERSION
from core.deploy.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    version: str
    models_loaded: list[str]  # "name:version" held in this worker's memory


@router.get("/health")
def health(serving: ServingDep) -> Health:
    return Health(status="ok", version=VERSION, models_loaded=serving.cache.loaded())


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(serving: ServingDep) -> Response:
    """Prometheus text: every server worker's counts summed (core/deploy/metrics.py)."""
    return Response(serving.metrics.exposition(), media_type=CONTENT_TYPE)
