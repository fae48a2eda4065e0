"""REST endpoints for monitoring: live metrics, drift, alerts."""

from __future__ import annotations

import pandas as pd
from fastapi import APIRouter

from app.api.deps import PrincipalDep, SessionDep
from app.api.schemas import DriftRequest, MonitorConfigRequest
from core.monitor.alerts import list_alerts, set_config
from core.monitor.live import live_drift, monitor_report
from core.monitor.offline import drift_report
from core.monitor.public import (
    AlertPublic,
    DriftReport,
    LiveDriftReport,
    MonitorConfigPublic,
    MonitorReport,
)
from core.usecases.alert_actions import acknowledge, raise_drift_alerts

router = APIRouter()


@router.get("/v1/models/{name}/monitor", tags=["monitor"])
def monitor(name: str, session: SessionDep, window: str = "5m") -> MonitorReport:
    return monitor_report(name, window, session=session)


@router.get("/v1/models/{name}/drift", tags=["monitor"])
def drift_live(name: str, session: SessionDep, window: str = "1h",
               version: int | None = None) -> LiveDriftReport:
    """Per-feature drift of recent traffic (sampled rows) against the training data, with
    prediction and label drift."""
    return live_drift(name, window, version, session=session)


@router.post("/v1/models/{name}/drift", tags=["monitor"], response_model=DriftReport,
             response_model_exclude_unset=True)  # `alerts_opened` only when asked for
def drift_batch(name: str, body: DriftRequest, session: SessionDep) -> DriftReport:
    """Per-feature drift of the posted records against the version's training data."""
    ref = f"{name}:{body.version}" if body.version else name
    report = drift_report(ref, pd.DataFrame.from_records(body.records), session=session)
    if body.alert:
        report.alerts_opened = [a.id for a in raise_drift_alerts(report, session=session)]
    return report


@router.get("/v1/alerts", tags=["monitor"])
def alerts(session: SessionDep, model: str | None = None) -> list[AlertPublic]:
    return list_alerts(model, session=session)


@router.post("/v1/alerts/{alert_id}/ack", tags=["monitor"])
def ack(alert_id: int, session: SessionDep, principal: PrincipalDep) -> AlertPublic:
    return acknowledge(alert_id, actor=principal.actor, session=session)


@router.post("/v1/models/{name}/monitor/config", tags=["monitor"])
def configure(name: str, body: MonitorConfigRequest, session: SessionDep, principal: PrincipalDep
              ) -> MonitorConfigPublic:
    cfg = set_config(name, session=session, actor=principal.actor,
                     **body.model_dump(exclude_none=True))
    return MonitorConfigPublic.model_validate(cfg)
