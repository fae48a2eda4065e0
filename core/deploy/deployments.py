"""A deployment is one object: the stable version (the `production` alias), at most one
candidate with its traffic percentage, the mode, the rollout steps and the guard rails.

Every change is a transaction on the `deployment` row plus an audit event carrying who, when,
why and the live metrics at that moment; moving `production` goes through
`core.registry.set_alias`, so it is also an AliasEvent in the promotion history. Server workers
read this state from the database (see `core.deploy.service`), so a change made by any worker or
by the CLI reaches all of them within a second and survives restarts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from core.errors import ConflictError, NotFoundError, WorkbenchError
from core.registry import PRODUCTION, set_alias
from core.registry.versions import check_model_name
from core.store import Alias, Deployment, ModelVersion, RegisteredModel, session_scope, utcnow
from core.store.audit import record

MODES = ("canary", "shadow")
DEFAULT_STEPS = [10.0, 50.0, 100.0]
DEFAULT_GUARD_RAILS: dict[str, Any] = {
    "max_error_rate": 0.05,   # candidate errors / requests over the current step
    "max_p99_ms": 1000.0,     # candidate latency p99 over the current step
    "min_requests": 100,      # requests a step needs before rails judge it (either way)
}


class InvalidRequestError(WorkbenchError):
    """A well-formed request whose values are out of range (bad percent, unknown mode)."""

    code = "invalid_request"
    http_status = 422


@dataclass
class DeploymentState:
    name: str
    stable: int | None = None
    candidate: int | None = None
    percent: float = 0.0
    mode: str = "canary"
    steps: list[float] = field(default_factory=lambda: list(DEFAULT_STEPS))
    guard_rails: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_GUARD_RAILS))
    auto_advance: bool = False
    step_started_at: datetime | None = None
    revision: int = 0
    updated_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("step_started_at", "updated_at"):
            out[k] = out[k].isoformat() if out[k] else None
        return out


def _model(s: Session, name: str) -> RegisteredModel:
    check_model_name(name)
    model = s.exec(select(RegisteredModel).where(RegisteredModel.name == name)).first()
    if model is None:
        raise NotFoundError(f"No model named {name!r}. List models with `workbench models`.")
    return model


def _production(s: Session, model_id: int) -> int | None:
    row = s.exec(select(Alias).where(Alias.model_id == model_id, Alias.name == PRODUCTION)).first()
    return row.version if row else None


def _state(name: str, model_id: int, row: Deployment | None, stable: int | None
           ) -> DeploymentState:
    if row is None:
        return DeploymentState(name=name, stable=stable)
    candidate = row.candidate_version if row.candidate_version != stable else None
    return DeploymentState(
        name=name, stable=stable, candidate=candidate,
        percent=row.percent if candidate is not None else 0.0, mode=row.mode,
        steps=list(row.steps or DEFAULT_STEPS),
        guard_rails={**DEFAULT_GUARD_RAILS, **(row.guard_rails or {})},
        auto_advance=row.auto_advance, step_started_at=row.step_started_at,
        revision=row.revision, updated_at=row.updated_at)


def get_state(name: str) -> DeploymentState:
    """The current rule, read from the database (stable = the production alias)."""
    with session_scope() as s:
        model = _model(s, name)
        row = s.exec(select(Deployment).where(Deployment.model_id == model.id)).first()
        return _state(name, model.id, row, _production(s, model.id))


def _check_percent(percent: float) -> float:
    try:
        percent = float(percent)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"percent must be a number from 0 to 100, not {percent!r}.") \
            from None
    if not math.isfinite(percent) or not 0 <= percent <= 100:
        raise InvalidRequestError(f"percent must be from 0 to 100, not {percent}.")
    return percent


def _check_version(s: Session, model: RegisteredModel, name: str, version: int) -> ModelVersion:
    mv = s.exec(select(ModelVersion).where(ModelVersion.model_id == model.id,
                                           ModelVersion.version == version)).first()
    if mv is None:
        raise NotFoundError(f"Model {name!r} has no version {version}. See "
                            f"`workbench versions {name}`.")
    if mv.archived:
        raise ConflictError(f"{name}:{version} is archived and cannot receive traffic.")
    return mv


def _locked_row(s: Session, model_id: int) -> Deployment:
    row = s.exec(select(Deployment).where(Deployment.model_id == model_id)
                 .with_for_update()).first()
    if row is None:
        row = Deployment(model_id=model_id, candidate_version=None, percent=0.0)
        s.add(row)
        s.flush()
    return row


def _bump(row: Deployment) -> None:
    row.revision = (row.revision or 0) + 1
    row.updated_at = utcnow()


def _default_warm(name: str, version: int) -> None:
    from core.registry import load_pipeline

    load_pipeline(f"{name}:{version}")


def deploy(name: str, version: int, percent: float = 10.0, *, mode: str = "canary",
           steps: list[float] | None = None, guard_rails: dict[str, Any] | None = None,
           auto_advance: bool | None = None, actor: str | None = None, reason: str = "",
           warm: Callable[[str, int], Any] | None = _default_warm,
           metrics: dict[str, Any] | None = None) -> DeploymentState:
    """With no production version yet, `version` becomes production at 100 %; otherwise it
    becomes the candidate at `percent` in `mode`. The version is loaded (verified) first: a
    version that fails to load never receives traffic."""
    percent = _check_percent(percent)
    if mode not in MODES:
        raise InvalidRequestError(f"mode must be one of {', '.join(MODES)}, not {mode!r}.")
    if steps is not None:
        steps = sorted({_check_percent(p) for p in steps})
        if not steps or steps[-1] != 100:
            raise InvalidRequestError("steps must end at 100, e.g. [10, 50, 100].")
    if guard_rails is not None:
        unknown = set(guard_rails) - set(DEFAULT_GUARD_RAILS)
        if unknown:
            raise InvalidRequestError(f"Unknown guard rails: {', '.join(sorted(unknown))}. "
                                      f"Known: {', '.join(DEFAULT_GUARD_RAILS)}.")
    with session_scope() as s:
        model = _model(s, name)
        _check_version(s, model, name, version)
        stable = _production(s, model.id)
    if version == stable:
        raise ConflictError(f"{name}:{version} is already the stable (production) version.")
    if warm is not None:
        warm(name, version)  # raises: the version never gets traffic
    if stable is None:
        set_alias(name, version, PRODUCTION, actor=actor,
                  reason=reason or "first deployment: 100 % of traffic")
    with session_scope(write=True) as s:
        model = _model(s, name)
        row = _locked_row(s, model.id)
        stable_now = _production(s, model.id)
        previous = {"candidate": row.candidate_version, "percent": row.percent,
                    "mode": row.mode}
        if stable is None:
            row.stable_version, row.candidate_version, row.percent = version, None, 0.0
            action = "deployment.initial"
        else:
            row.stable_version = stable_now
            row.candidate_version, row.percent, row.mode = version, percent, mode
            row.step_started_at = utcnow()
            action = "deployment.candidate"
        if steps is not None:
            row.steps = steps
        if guard_rails is not None:
            row.guard_rails = {**(row.guard_rails or {}), **guard_rails}
        if auto_advance is not None:
            row.auto_advance = auto_advance
        _bump(row)
        s.add(row)
        record(s, action, f"model:{name}", actor=actor, reason=reason, version=version,
               percent=row.percent, mode=row.mode, previous=previous, metrics=metrics or {})
        return _state(name, model.id, row, stable_now)


def set_percent(name: str, percent: float, *, actor: str | None = None, reason: str = "",
                expect_candidate: int | None = None,
                metrics: dict[str, Any] | None = None) -> DeploymentState:
    """Move the candidate's share (a rollout step). `expect_candidate` makes it a no-op when
    another worker already changed the candidate (guard rails run in every worker)."""
    percent = _check_percent(percent)
    with session_scope(write=True) as s:
        model = _model(s, name)
        row = _locked_row(s, model.id)
        stable = _production(s, model.id)
        if row.candidate_version is None or row.candidate_version == stable:
            raise ConflictError(f"Model {name!r} has no candidate to route traffic to. Start "
                                f"one with `workbench deploy {name} VERSION --percent P`.")
        if expect_candidate is not None and row.candidate_version != expect_candidate:
            return _state(name, model.id, row, stable)
        previous = row.percent
        row.percent, row.step_started_at = percent, utcnow()
        _bump(row)
        s.add(row)
        record(s, "deployment.percent", f"model:{name}", actor=actor, reason=reason,
               version=row.candidate_version, from_percent=previous, to_percent=percent,
               metrics=metrics or {})
        return _state(name, model.id, row, stable)


def promote(name: str, *, actor: str | None = None, reason: str = "",
            expect_candidate: int | None = None,
            metrics: dict[str, Any] | None = None) -> DeploymentState:
    """The candidate becomes stable: the production alias moves (an AliasEvent)."""
    state = get_state(name)
    if state.candidate is None:
        raise ConflictError(f"Model {name!r} has no candidate to promote.")
    if expect_candidate is not None and state.candidate != expect_candidate:
        return state
    set_alias(name, state.candidate, PRODUCTION, actor=actor,
              reason=reason or f"promoted from candidate at {state.percent:g} %")
    with session_scope(write=True) as s:
        model = _model(s, name)
        row = _locked_row(s, model.id)
        stable = _production(s, model.id)
        promoted = state.candidate
        row.stable_version = stable
        if row.candidate_version in (promoted, stable):
            row.candidate_version, row.percent, row.step_started_at = None, 0.0, None
        _bump(row)
        s.add(row)
        record(s, "deployment.promote", f"model:{name}", actor=actor, reason=reason,
               version=promoted, from_version=state.stable, percent=state.percent,
               metrics=metrics or {})
        return _state(name, model.id, row, stable)


def rollback(name: str, *, actor: str | None = None, reason: str = "",
             expect_candidate: int | None = None, automatic: bool = False,
             metrics: dict[str, Any] | None = None) -> DeploymentState:
    """The kill switch: the candidate is removed and 100 % goes back to stable at once."""
    with session_scope(write=True) as s:
        model = _model(s, name)
        row = _locked_row(s, model.id)
        stable = _production(s, model.id)
        candidate = row.candidate_version if row.candidate_version != stable else None
        if candidate is None:
            raise ConflictError(f"Model {name!r} has no candidate to roll back; 100 % of "
                                f"traffic already goes to {name}:{stable}.")
        if expect_candidate is not None and candidate != expect_candidate:
            return _state(name, model.id, row, stable)
        previous = {"candidate": candidate, "percent": row.percent, "mode": row.mode}
        row.candidate_version, row.percent, row.step_started_at = None, 0.0, None
        _bump(row)
        s.add(row)
        record(s, "deployment.rollback", f"model:{name}", actor=actor, reason=reason,
               version=candidate, stable=stable, automatic=automatic, previous=previous,
               metrics=metrics or {})
        return _state(name, model.id, row, stable)


def history(name: str, limit: int = 100) -> list[dict[str, Any]]:
    """Deployment events of a model, newest first."""
    from core.store import AuditEvent

    with session_scope() as s:
        _model(s, name)
        rows = s.exec(select(AuditEvent).where(AuditEvent.entity == f"model:{name}",
                                               AuditEvent.action.startswith("deployment."))
                      .order_by(AuditEvent.id.desc()).limit(limit)).all()
        return [{"action": e.action, "at": e.at.isoformat(), "actor": e.actor,
                 "reason": e.reason, "detail": e.detail} for e in rows]
