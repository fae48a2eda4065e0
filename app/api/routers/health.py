"""Liveness (`/health`, open even with a token set) and the Prometheus scrape (`/metrics`)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from app.api.deps import ServingDep
from app.api.metrics import prometheus_text
from app.api.version import VERSION

router = APIRouter(tags=["health"])


@router.get("/health")
def health(serving: ServingDep) -> dict[str, Any]:
    return {"status": "ok", "version": VERSION, "models_loaded": serving.cache.loaded()}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(serving: ServingDep) -> PlainTextResponse:
    return PlainTextResponse(prometheus_text(serving), media_type="text/plain; version=0.0.4")
