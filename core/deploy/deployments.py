"""A deployment is one object: the stable version (the `production` alias), at most one
candidate with its traffic percentage, the mode, the rollout steps and the guard rails.

Every change is one transaction that locks the model and its `deployment` row, reads the
state, decides and writes, plus an audit event carrying who, when, why and the live metrics at
that moment; moving `production` goes through `core.registry.move_alias` inside that
same transaction, so it is also an AliasEvent in the promotion history and can never disagree
with the row. Server workers read this state from the database (see `core.deploy.service`), so
a change made by any worker or by the CLI reaches all of them within a second and survives
restarts.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from core.errors import ConflictError, NotFoundError, WorkbenchError
from core.registry import PRODUCTION, check_model_name, move_alias
from core.store import Alias, Deployment, ModelVersion, RegisteredModel, session_scope, utcnow
from core.store.audit import record

MODES = ("canary", "shadow")
DEFAULT_STEPS = [10.0, 50.0, 100.0]
DEFAULT_GUARD_RAILS: dict[str, Any] = {
    "max_error_rate": 0.05,   # candidate errors / requests over the current step
    "max_p99_ms": 1000.0,     # candidate latency p99 over the current step
    "min_requests": 100,      # requests a step needs before rails judge it (either way)
}


@dataclass(frozen=True)
class Rail:
    """What one guard rail may be: a finite number in [low, high], an integer if `whole`."""

    low: float
    high: float
    whole: bool = False
    meaning: str = ""


GUARD_RAIL_LIMITS: dict[str, Rail] = {
    "max_error_rate": Rail(0.0, 1.0, meaning="a fraction of requests, e.g. 0.05 for 5 %"),
    "max_p99_ms": Rail(1.0, 3_600_000.0, meaning="milliseconds, e.g. 1000"),
    "min_requests": Rail(1, 1_000_000_000, whole=True, meaning="a whole number, e.g. 100"),
}


class InvalidRequestError(WorkbenchError):
    """A well-formed request whose values are out of range (bad percent, unknown mode)."""

    code = "invalid_request"
    http_status = 422


def _still_valid(stored: dict[str, Any] | None) -> dict[str, Any]:
    """The stored rails that pass today's check: rails an older release stored unchecked are
    dropped (back to their default) when new ones are set, rather than kept broken."""
    out = {}
    for key, value in (stored or {}).items():
        try:
            out.update(check_guard_rails({key: value}))
        except InvalidRequestError:
            continue
    return out


def _finite(value: Any) -> float | None:
    """`value` as a finite float, else None (text, booleans, NaN, ±Infinity, 10**400)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _num(x: float) -> str:
    return f"{x:,.0f}" if x == int(x) else f"{x:g}"


def check_guard_rails(rails: dict[str, Any],
                      label: Callable[[str], str] = lambda key: f"guard_rails.{key}"
                      ) -> dict[str, Any]:
    """The rails as clean numbers, or InvalidRequestError naming every bad field. The one
    check for every way in (REST, CLI, UI, rails stored by an older release), because a rail
    like `min_requests: Infinity` would make the guard loop fail on every tick. `label` names
    a rail the way the caller's user wrote it (`guard_rails.min_requests`, `--min-requests`)."""
    if not isinstance(rails, dict):
        raise InvalidRequestError(f"guard_rails must be an object such as "
                                  f'{{"max_error_rate": 0.05}}, not {rails!r}.')
    unknown = set(rails) - set(GUARD_RAIL_LIMITS)
    if unknown:
        raise InvalidRequestError(f"Unknown guard rails: {', '.join(sorted(map(str, unknown)))}"
                                  f". Known: {', '.join(GUARD_RAIL_LIMITS)}.")
    clean: dict[str, Any] = {}
    problems = []
    for key, value in rails.items():
        rail = GUARD_RAIL_LIMITS[key]
        bounds = f"from {_num(rail.low)} to {_num(rail.high)} ({rail.meaning})"
        number = _finite(value)
        if number is None or not rail.low <= number <= rail.high:
            problems.append(f"{label(key)} must be a number {bounds}, not {value!r}.")
        elif rail.whole and number != int(number):
            problems.append(f"{label(key)} must be a whole number {bounds}, not {value!r}.")
        else:
            clean[key] = int(number) if rail.whole else float(number)
    if problems:
        raise InvalidRequestError(" ".join(problems))
    return clean


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


def _locked(s: Session, name: str) -> tuple[RegisteredModel, Deployment]:
    """The model and its deployment row, held until the transaction ends.

    Every change of a deployment reads, decides and writes inside one transaction holding
    these locks: BEGIN IMMEDIATE (`session_scope(write=True)`) on SQLite, row locks on
    PostgreSQL. The model row is locked first because a first deployment has no deployment row
    yet; two first deploys, a promote and a rollback of one model therefore queue, and each
    sees what the one before it committed."""
    check_model_name(name)
    model = s.exec(select(RegisteredModel).where(RegisteredModel.name == name)
                   .with_for_update()).first()
    if model is None:
        raise NotFoundError(f"No model named {name!r}. List models with `workbench models`.")
    row = s.exec(select(Deployment).where(Deployment.model_id == model.id)
                 .with_for_update()).first()
    if row is None:
        row = Deployment(model_id=model.id, candidate_version=None, percent=0.0)
        s.add(row)
        s.flush()
    return model, row


def _candidate(row: Deployment, stable: int | None) -> int | None:
    return row.candidate_version if row.candidate_version != stable else None


def _expect(name: str, candidate: int | None, expected: int | None, action: str) -> None:
    """Refuse (409) when the candidate is not the one the caller decided about: a request
    that started before another change must not act on what replaced it."""
    if expected is not None and candidate != expected:
        now = f"candidate is now {name}:{candidate}" if candidate is not None \
            else "there is no candidate any more"
        raise ConflictError(f"Not {action}: {name}:{expected} was the candidate when this "
                            f"request started, but {now} (changed by another request). Nothing "
                            "was changed; look at the deployment again before retrying.")


def _bump(row: Deployment) -> None:
    row.revision = (row.revision or 0) + 1
    row.updated_at = utcnow()


def _default_warm(name: str, version: int) -> None:
    from core.registry import load_pipeline

    with session_scope() as s:
        load_pipeline(f"{name}:{version}", session=s)


def deploy(name: str, version: int, percent: float = 10.0, *, mode: str = "canary",
           steps: list[float] | None = None, guard_rails: dict[str, Any] | None = None,
           auto_advance: bool | None = None, actor: str | None = None, reason: str = "",
           warm: Callable[[str, int], Any] | None = _default_warm,
           metrics: dict[str, Any] | None = None) -> DeploymentState:
    """With no production version yet, `version` becomes production at 100 %; otherwise it
    becomes the candidate at `percent` in `mode`. The version is loaded (verified) first: a
    version that fails to load never receives traffic. Loading is slow, so it happens outside
    the transaction; if production moved meanwhile (another first deploy, a promotion), this
    one is refused with a ConflictError instead of acting on what it no longer sees."""
    percent = _check_percent(percent)
    if mode not in MODES:
        raise InvalidRequestError(f"mode must be one of {', '.join(MODES)}, not {mode!r}.")
    if steps is not None:
        steps = sorted({_check_percent(p) for p in steps})
        if not steps or steps[-1] != 100:
            raise InvalidRequestError("steps must end at 100, e.g. [10, 50, 100].")
    if guard_rails is not None:
        guard_rails = check_guard_rails(guard_rails)
    with session_scope() as s:
        model = _model(s, name)
        _check_version(s, model, name, version)
        stable = _production(s, model.id)
    if version == stable:
        raise ConflictError(f"{name}:{version} is already the stable (production) version.")
    if warm is not None:
        warm(name, version)  # raises: the version never gets traffic
    with session_scope(write=True) as s:
        model, row = _locked(s, name)
        _check_version(s, model, name, version)  # archived while it loaded?
        stable_now = _production(s, model.id)
        if version == stable_now:
            raise ConflictError(f"{name}:{version} became the stable (production) version "
                                "while this request was loading it (another request); nothing "
                                "was changed.")
        if stable_now != stable:
            raise ConflictError(
                f"Production of {name!r} moved from "
                f"{'none' if stable is None else f'version {stable}'} to version {stable_now} "
                f"(another request) while {name}:{version} was loading; nothing was changed. "
                "Look at the deployment again and deploy once more if it is still wanted.")
        previous = {"candidate": row.candidate_version, "percent": row.percent,
                    "mode": row.mode}
        if stable is None:
            row.stable_version, row.candidate_version, row.percent = version, None, 0.0
            row.step_started_at = None
            move_alias(model, version, PRODUCTION, session=s, actor=actor,
                       reason=reason or "first deployment: 100 % of traffic")
            stable_now = version
            action = "deployment.initial"
        else:
            row.stable_version = stable_now
            row.candidate_version, row.percent, row.mode = version, percent, mode
            row.step_started_at = utcnow()
            action = "deployment.candidate"
        if steps is not None:
            row.steps = steps
        if guard_rails is not None:
            row.guard_rails = {**_still_valid(row.guard_rails), **guard_rails}
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
    """Move the candidate's share (a rollout step). `expect_candidate` refuses (409) when
    another worker already changed the candidate (guard rails run in every worker)."""
    percent = _check_percent(percent)
    with session_scope(write=True) as s:
        model, row = _locked(s, name)
        stable = _production(s, model.id)
        candidate = _candidate(row, stable)
        if candidate is None:
            raise ConflictError(f"Model {name!r} has no candidate to route traffic to. Deploy a "
                                f"version as the candidate first (Deployments page; CLI: "
                                f"`workbench deploy {name} VERSION --percent P`).")
        _expect(name, candidate, expect_candidate, "moved")
        previous = row.percent
        row.percent, row.step_started_at = percent, utcnow()
        _bump(row)
        s.add(row)
        record(s, "deployment.percent", f"model:{name}", actor=actor, reason=reason,
               version=candidate, from_percent=previous, to_percent=percent,
               metrics=metrics or {})
        return _state(name, model.id, row, stable)


def promote(name: str, *, actor: str | None = None, reason: str = "",
            expect_candidate: int | None = None,
            metrics: dict[str, Any] | None = None) -> DeploymentState:
    """The candidate becomes stable: the production alias moves (an AliasEvent) in the same
    transaction that reads the candidate, so a rollback committed first leaves nothing to
    promote (409) rather than being undone."""
    with session_scope(write=True) as s:
        model, row = _locked(s, name)
        stable = _production(s, model.id)
        promoted = _candidate(row, stable)
        if promoted is None:
            raise ConflictError(f"Model {name!r} has no candidate to promote; 100 % of traffic "
                                f"goes to {name}:{stable}.")
        _expect(name, promoted, expect_candidate, "promoted")
        percent = row.percent
        row.stable_version = promoted
        row.candidate_version, row.percent, row.step_started_at = None, 0.0, None
        move_alias(model, promoted, PRODUCTION, session=s, actor=actor,
                   reason=reason or f"promoted from candidate at {percent:g} %")
        _bump(row)
        s.add(row)
        record(s, "deployment.promote", f"model:{name}", actor=actor, reason=reason,
               version=promoted, from_version=stable, percent=percent, metrics=metrics or {})
        return _state(name, model.id, row, promoted)


def rollback(name: str, *, actor: str | None = None, reason: str = "",
             expect_candidate: int | None = None, automatic: bool = False,
             metrics: dict[str, Any] | None = None) -> DeploymentState:
    """The kill switch: the candidate is removed and 100 % goes back to stable at once."""
    with session_scope(write=True) as s:
        model, row = _locked(s, name)
        stable = _production(s, model.id)
        candidate = _candidate(row, stable)
        if candidate is None:
            raise ConflictError(f"Model {name!r} has no candidate to roll back; 100 % of "
                                f"traffic already goes to {name}:{stable}.")
        _expect(name, candidate, expect_candidate, "rolled back")
        previous = {"candidate": candidate, "percent": row.percent, "mode": row.mode}
        row.stable_version = stable
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
