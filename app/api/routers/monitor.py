"""REST endpoints for monitoring: live metrics, drift, alerts."""

from __future__ import annotations

from typing import Any

import pandas as pd
from fastapi import APIRouter

from app.api.schemas import DriftRequest, MonitorConfigRequest
from core.monitor.alerts import acknowledge, alert_doc, list_alerts, set_config
from core.monitor.live import accuracy, live_drift, traffic
from core.monitor.offline import drift_report, raise_drift_alerts
from core.registry import resolve

router = APIRouter()


@router.get("/v1/models/{name}/monitor", tags=["monitor"])
def monitor(name: str, window: str = "5m") -> dict[str, Any]:
    live = traffic(name, window)
    live["accuracy"] = accuracy(name, resolve(name)[1].task, window)
    return live


@router.get("/v1/models/{name}/drift", tags=["monitor"])
def drift_live(name: str, window: str = "1h", version: int | None = None) -> dict[str, Any]:
    """Per-feature drift of recent traffic (sampled rows) against the training data, with
    prediction and label drift."""
    return live_drift(name, window, version)


@router.post("/v1/models/{name}/drift", tags=["monitor"])
def drift_batch(name: str, body: DriftRequest) -> dict[str, Any]:
    """Per-feature drift of the posted records against the version's training data."""
    ref = f"{name}:{body.version}" if body.version else name
    report = drift_report(ref, pd.DataFrame.from_records(body.records))
    if body.alert:
        report["alerts_opened"] = [a.id for a in raise_drift_alerts(report)]
    return report


@router.get("/v1/alerts", tags=["monitor"])
def alerts(model: str | None = None) -> list[dict[str, Any]]:
    return [alert_doc(a) for a in list_alerts(model)]


@router.post("/v1/alerts/{alert_id}/ack", tags=["monitor"])
def ack(alert_id: int) -> dict[str, Any]:
    return alert_doc(acknowledge(alert_id, actor="api"))


@router.post("/v1/models/{name}/monitor/config", tags=["monitor"])
def configure(name: str, body: MonitorConfigRequest) -> dict[str, Any]:
    cfg = set_config(name, actor="api", **body.model_dump(exclude_none=True))
    return cfg.model_dump()
