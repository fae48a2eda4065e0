"""Recurring retraining: schedules stored in the database, fired by any live worker.

APScheduler's CronTrigger parses the expression and computes fire times; claiming a due
schedule is a row-locked update, so with several workers exactly one fires each due time
(the retrain it fires is `core.usecases.retraining.fire_due`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func
from sqlmodel import Session, select

from core.automl.request import check_overrides
from core.errors import InputError, NotFoundError
from core.jobs.ledger import writing
from core.jobs.states import Trigger
from core.store import Job, RegisteredModel, Schedule, utcnow
from core.store.audit import record
from core.store.scope import owned_get

DAILY_RE = re.compile(r"^(\d{1,2}):(\d{2})$")


def to_cron(when: str) -> str:
    """'02:00' (daily, UTC) or a five-field cron expression, validated."""
    when = when.strip()
    m = DAILY_RE.match(when)
    if m:
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            raise InputError(f"{when!r} is not a time of day: use HH:MM, e.g. 02:00.")
        when = f"{minute} {hour} * * *"
    try:
        CronTrigger.from_crontab(when, timezone=UTC)
    except ValueError as exc:
        raise InputError(
            f"{when!r} is not a valid schedule ({exc}). Use HH:MM for a daily run or a cron "
            "expression like '0 2 * * 1' (Mondays 02:00 UTC).") from None
    return when


def next_fire(cron: str, after: datetime) -> datetime:
    trigger = CronTrigger.from_crontab(cron, timezone=UTC)
    return trigger.get_next_fire_time(None, after.astimezone(UTC))


def create_schedule(model: str, when: str, *, session: Session,
                    settings: Mapping[str, Any] | None = None, auto_canary: bool = False,
                    gate_min_abs: float = 0.0, gate_min_rel: float = 0.0,
                    actor: str | None = None) -> Schedule:
    """Retrain `model` at `when` with `settings` over its last ones (validated first)."""
    cron = to_cron(when)
    overrides = check_overrides(settings or {})
    with writing(session):
        if session.exec(select(RegisteredModel).where(RegisteredModel.name == model)
                        ).first() is None:
            raise NotFoundError(f"No model named {model!r}: train it once before scheduling "
                                "retraining.")
        sched = Schedule(model_name=model, cron=cron, settings=overrides,
                         auto_canary=auto_canary, gate_min_abs=gate_min_abs,
                         gate_min_rel=gate_min_rel, next_run_at=next_fire(cron, utcnow()))
        session.add(sched)
        session.flush()
        record(session, "schedule.create", f"schedule:{sched.id}", actor=actor, model=model,
               cron=cron)
        return sched


def list_schedules(*, session: Session) -> list[Schedule]:
    return list(session.exec(select(Schedule).order_by(Schedule.id)
                             .execution_options(populate_existing=True)).all())


def set_paused(schedule_id: int, paused: bool, *, session: Session,
               actor: str | None = None) -> Schedule:
    with writing(session):
        sched = _get(session, schedule_id)
        sched.paused = paused
        if not paused:
            sched.next_run_at = next_fire(sched.cron, utcnow())
        session.add(sched)
        record(session, "schedule.pause" if paused else "schedule.resume",
               f"schedule:{schedule_id}", actor=actor)
        return sched


def delete_schedule(schedule_id: int, *, session: Session, actor: str | None = None) -> None:
    with writing(session):
        sched = _get(session, schedule_id)
        for job in session.exec(select(Job).where(Job.schedule_id == schedule_id)):
            job.schedule_id = None  # the jobs it created stay in the ledger
            session.add(job)
        session.delete(sched)
        record(session, "schedule.delete", f"schedule:{schedule_id}", actor=actor)


def get_schedule(schedule_id: int, *, session: Session) -> Schedule | None:
    return owned_get(session, Schedule, schedule_id)


def _get(session: Session, schedule_id: int) -> Schedule:
    sched = session.get(Schedule, schedule_id, populate_existing=True)
    if sched is None:
        raise NotFoundError(f"No schedule {schedule_id}. List them with "
                            "`workbench schedule list`.")
    return sched


def cpu_seconds_today(*, session: Session) -> float:
    """CPU spent today by scheduled jobs (the daily budget's meter)."""
    start = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    return float(session.exec(select(func.coalesce(func.sum(Job.cpu_seconds), 0.0))
                              .where(Job.trigger == Trigger.SCHEDULE.value,
                                     Job.created_at >= start)).one())


@dataclass(frozen=True)
class DueSchedule:
    """A schedule whose time came, claimed by this caller: its retrain is to be queued."""

    id: int
    model: str
    settings: dict[str, Any]
    workspace: str = "default"  # where its retrain runs (core/store/scope.py)


def claim_due(now: datetime, *, session: Session) -> list[DueSchedule]:
    """Advance every due, unpaused schedule to its next time and return them: of several
    workers claiming at once, each due time goes to exactly one (row locks, SKIP LOCKED)."""
    with writing(session):
        due = session.exec(select(Schedule).where(Schedule.paused == False,  # noqa: E712
                                                  Schedule.next_run_at <= now)
                           .with_for_update(skip_locked=True)
                           .execution_options(populate_existing=True)).all()
        for d in due:
            d.last_run_at, d.next_run_at = now, next_fire(d.cron, now + timedelta(seconds=1))
            session.add(d)
        return [DueSchedule(d.id, d.model_name, dict(d.settings), d.workspace) for d in due]


def record_skip(schedule_id: int, action: str, reason: str, *, session: Session) -> None:
    """Say in the audit log why a due schedule queued nothing (`schedule.skipped`: the daily
    budget is spent; `schedule.error`: its retrain was refused)."""
    with writing(session):
        record(session, action, f"schedule:{schedule_id}", actor="scheduler", reason=reason)
