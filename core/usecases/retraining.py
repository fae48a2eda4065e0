"""Retraining: a new job with a model's last settings on its latest data, asked for by a
person or a client, a schedule that came due, or an alert.

The data is found by `core.jobs.fresh_data` (the newest version that recorded its training
data gives the dataset, target and settings; newer uploads and fed-back rows are added); the
request is the `TrainingRequest` that trained that version, with a schedule's settings on
top; a retrain's version faces the promotion gate (`core.usecases.promotion_gate`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session

from core.automl.request import TrainingRequest
from core.errors import WorkbenchError
from core.jobs import ledger
from core.jobs.fresh_data import RetrainData, retrain_data
from core.jobs.schedules import claim_due, cpu_seconds_today, record_skip
from core.jobs.states import Trigger
from core.settings import get_settings
from core.store import Database, Job, utcnow
from core.usecases import training

log = logging.getLogger("workbench.retrain")


def retrain(model: str, *, session: Session, trigger: Trigger = Trigger.API,
            schedule_id: int | None = None, overrides: Mapping[str, Any] | None = None,
            actor: str | None = None) -> Job:
    """Queue a job with the model's last settings (`overrides` on top) on its latest data:
    the newest version that recorded its training data (an imported version records none)
    gives the dataset, target and settings; the newest upload with that dataset's columns,
    plus the served rows fed back since, is what it trains on."""
    data = retrain_data(model, session=session, actor=actor)
    return training.submit(_request(model, data, overrides), session=session, trigger=trigger,
                           schedule_id=schedule_id, actor=actor)


def retrain_for_alert(model: str, version: int | None, *, session: Session) -> str:
    """What an alert with retrain_on_alert does, in the words the alert shows: queue one
    promotion-gated job per model however many alerts fire (one already pending or running
    covers them all), and only when there is data no version was trained on yet."""
    active = ledger.active_job(model, session=session)
    if active is not None:
        return f"job {active.id} ({active.state}) of {model} already covers this alert"
    data = retrain_data(model, version, session=session, actor="alert")
    if not data.new:
        return (f"no data newer than version {version or data.base.version}; upload labelled "
                "data or send feedback to retrain")
    job, created = training.submit_once(_request(model, data, None), session=session,
                                        trigger=Trigger.ALERT, actor="alert")
    if not created:
        return f"job {job.id} ({job.state}) of {model} already covers this alert"
    fed_back = f" with {data.feedback_rows} fed-back rows" if data.feedback_rows else ""
    return (f"retrain job {job.id} queued on dataset {data.dataset.id}{fed_back} "
            "(promotion-gated)")


def _request(model: str, data: RetrainData,
             overrides: Mapping[str, Any] | None) -> TrainingRequest:
    last = data.job.settings if data.job is not None else {}
    return TrainingRequest.from_settings(last, overrides, dataset=data.dataset.id,
                                         target=data.target, name=model)


def fire_due(db: Database, now: datetime | None = None) -> list[int]:
    """Queue a retrain for every schedule whose time has come (at most one job per schedule
    per call); returns the new jobs' ids. Stops scheduled work, and says so in the audit log,
    once the daily CPU budget is spent."""
    now = now or utcnow()
    budget_h = get_settings().daily_cpu_hours
    with db.session() as s:
        due = claim_due(now, session=s)
    fired: list[int] = []
    for sched in due:
        with db.session() as s:  # the budget is the machine's: every workspace's jobs
            spent = cpu_seconds_today(session=s) if budget_h is not None else 0.0
        # found unscoped, acted on in the schedule's workspace (its job is stamped there)
        with db.session(workspace=sched.workspace) as s:
            if budget_h is not None and spent >= budget_h * 3600:
                record_skip(sched.id, "schedule.skipped",
                            f"daily compute budget of {budget_h} CPU hours is spent", session=s)
                continue
            try:
                fired.append(retrain(sched.model, session=s, trigger=Trigger.SCHEDULE,
                                     schedule_id=sched.id, overrides=sched.settings,
                                     actor="scheduler").id)
            except WorkbenchError as exc:
                s.rollback()
                log.warning("schedule %d: %s", sched.id, exc.message)
                record_skip(sched.id, "schedule.error", exc.message, session=s)
    return fired
