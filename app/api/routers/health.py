"""Liveness (`/health`, open even with a token set) and the Prometheus scrape (`/metrics`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from app.api.deps import ServingDep
from app.api.version import VERSION
from core.deploy.metrics import CONTENT_TYPE

router = APIRouter(tags=["health"])


@router.get("/health")
def health(serving: ServingDep) -> dict[str, Any]:
    return {"status": "ok", "version": VERSION, "models_loaded": serving.cache.loaded()}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(serving: ServingDep) -> Response:
    """Prometheus text: every server worker's counts summed (core/deploy/metrics.py)."""
    return Response(serving.metrics.exposition(), media_type=CONTENT_TYPE)
