"""Recurring retraining: schedules stored in the database, fired by any live worker.

APScheduler's CronTrigger parses the expression and computes fire times; the firing itself
is a row-locked update, so with several workers exactly one fires each due schedule.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func
from sqlmodel import select

from core.errors import NotFoundError, WorkbenchError
from core.jobs import ledger
from core.jobs.fresh_data import RetrainData, retrain_data
from core.settings import get_settings
from core.store import Job, RegisteredModel, Schedule, session_scope, utcnow
from core.store.audit import record

DAILY_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


def to_cron(when: str) -> str:
    """'02:00' (daily, UTC) or a five-field cron expression, validated."""
    when = when.strip()
    m = DAILY_RE.match(when)
    if m:
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            raise WorkbenchError(f"{when!r} is not a time of day: use HH:MM, e.g. 02:00.")
        when = f"{minute} {hour} * * *"
    try:
        CronTrigger.from_crontab(when, timezone=UTC)
    except ValueError as exc:
        raise WorkbenchError(
            f"{when!r} is not a valid schedule ({exc}). Use HH:MM for a daily run or a cron "
            "expression like '0 2 * * 1' (Mondays 02:00 UTC).") from None
    return when


def next_fire(cron: str, after: datetime) -> datetime:
    trigger = CronTrigger.from_crontab(cron, timezone=UTC)
    return trigger.get_next_fire_time(None, after.astimezone(UTC))


def create_schedule(model: str, when: str, *, settings: dict[str, Any] | None = None,
                    auto_canary: bool = False, gate_min_abs: float = 0.0,
                    gate_min_rel: float = 0.0, actor: str | None = None) -> Schedule:
    cron = to_cron(when)
    with session_scope(write=True) as s:
        if s.exec(select(RegisteredModel).where(RegisteredModel.name == model)).first() is None:
            raise NotFoundError(f"No model named {model!r}: train it once before scheduling "
                                "retraining.")
        sched = Schedule(model_name=model, cron=cron, settings=settings or {},
                         auto_canary=auto_canary, gate_min_abs=gate_min_abs,
                         gate_min_rel=gate_min_rel, next_run_at=next_fire(cron, utcnow()))
        s.add(sched)
        s.flush()
        record(s, "schedule.create", f"schedule:{sched.id}", actor=actor, model=model,
               cron=cron)
        return sched


def list_schedules() -> list[Schedule]:
    with session_scope() as s:
        return list(s.exec(select(Schedule).order_by(Schedule.id)).all())


def set_paused(schedule_id: int, paused: bool, actor: str | None = None) -> Schedule:
    with session_scope(write=True) as s:
        sched = _get(s, schedule_id)
        sched.paused = paused
        if not paused:
            sched.next_run_at = next_fire(sched.cron, utcnow())
        s.add(sched)
        record(s, "schedule.pause" if paused else "schedule.resume",
               f"schedule:{schedule_id}", actor=actor)
        return sched


def delete_schedule(schedule_id: int, actor: str | None = None) -> None:
    with session_scope(write=True) as s:
        sched = _get(s, schedule_id)
        for job in s.exec(select(Job).where(Job.schedule_id == schedule_id)):
            job.schedule_id = None  # the jobs it created stay in the ledger
            s.add(job)
        s.delete(sched)
        record(s, "schedule.delete", f"schedule:{schedule_id}", actor=actor)


def _get(s: Any, schedule_id: int) -> Schedule:
    sched = s.get(Schedule, schedule_id)
    if sched is None:
        raise NotFoundError(f"No schedule {schedule_id}. List them with "
                            "`workbench schedule list`.")
    return sched


def cpu_seconds_today() -> float:
    start = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    with session_scope() as s:
        return float(s.exec(select(func.coalesce(func.sum(Job.cpu_seconds), 0.0))
                            .where(Job.trigger == "schedule", Job.created_at >= start)).one())


def retrain(model: str, *, trigger: str = "api", schedule_id: int | None = None,
            settings: dict[str, Any] | None = None, actor: str | None = None) -> Job:
    """Queue a job with the model's last settings on its latest data: the newest version
    that recorded its training data (an imported version records none) gives the dataset,
    target and settings; the newest upload with that dataset's columns, plus the served rows
    fed back since, is what it trains on (`core.jobs.fresh_data`)."""
    from core.automl.runner import submit

    data = retrain_data(model, actor=actor)
    return submit(data.dataset, data.target, name=model, trigger=trigger,
                  schedule_id=schedule_id, actor=actor, **_last_settings(data, settings))


def retrain_for_alert(model: str, version: int | None) -> str:
    """What an alert with retrain_on_alert does, in the words the alert shows: queue one
    promotion-gated job per model however many alerts fire (one already pending or running
    covers them all), and only when there is data no version was trained on yet."""
    from core.automl.runner import job_fields

    with session_scope() as s:
        active = ledger.active_job(s, model)
    if active is not None:
        return f"job {active.id} ({active.state}) of {model} already covers this alert"
    data = retrain_data(model, version, actor="alert")
    if not data.new:
        return (f"no data newer than version {version or data.base.version}; upload labelled "
                "data or send feedback to retrain")
    job, created = ledger.create_job_once(**job_fields(
        data.dataset, data.target, name=model, trigger="alert", actor="alert",
        **_last_settings(data, None)))
    if not created:
        return f"job {job.id} ({job.state}) of {model} already covers this alert"
    fed_back = f" with {data.feedback_rows} fed-back rows" if data.feedback_rows else ""
    return (f"retrain job {job.id} queued on dataset {data.dataset.id}{fed_back} "
            "(promotion-gated)")


def _last_settings(data: RetrainData, override: dict[str, Any] | None) -> dict[str, Any]:
    last = dict(data.job.settings) if data.job is not None else {}
    last.update(override or {})
    keys = ("task", "metric", "budget", "seed", "time_column", "estimators", "params",
            "sampler", "ensemble", "market")
    return {k: last[k] for k in keys if k in last and last[k] is not None}


def fire_due(now: datetime | None = None) -> list[int]:
    """Create jobs for every schedule whose time has come (at most one job per schedule per
    call). Stops scheduled work, and says so, once the daily CPU budget is spent."""
    now = now or utcnow()
    budget_h = get_settings().daily_cpu_hours
    fired: list[int] = []
    with session_scope(write=True) as s:
        due = s.exec(select(Schedule).where(Schedule.paused == False,  # noqa: E712
                                            Schedule.next_run_at <= now)
                     .with_for_update(skip_locked=True)).all()
        claimed = [(d.id, d.model_name, dict(d.settings)) for d in due]
        for d in due:
            d.last_run_at, d.next_run_at = now, next_fire(d.cron, now + timedelta(seconds=1))
            s.add(d)
    for sched_id, model, settings in claimed:
        if budget_h is not None and cpu_seconds_today() >= budget_h * 3600:
            with session_scope() as s:
                record(s, "schedule.skipped", f"schedule:{sched_id}", actor="scheduler",
                       reason=f"daily compute budget of {budget_h} CPU hours is spent")
            continue
        try:
            fired.append(retrain(model, trigger="schedule", schedule_id=sched_id,
                                 settings=settings, actor="scheduler").id)
        except WorkbenchError as exc:
            with session_scope() as s:
                record(s, "schedule.error", f"schedule:{sched_id}", actor="scheduler",
                       reason=exc.message)
    return fired
