"""A deployment is one object: the stable version (the `production` alias), at most one
candidate with its traffic percentage, the mode, the rollout steps and the guard rails.

Every change is one transaction on the caller's session (`lock_for_write` first, one commit
at the end) that locks the model and its `deployment` row, reads the state, decides and
writes, plus an audit event carrying who, when, why and the live metrics at that moment;
moving `production` goes through the registry's non-committing `move_alias` inside that same
transaction, so it is also an AliasEvent in the promotion history and can never disagree
with the row. Server workers read this state from the database (see `core.deploy.service`),
so a change made by any worker or by the CLI reaches all of them within a second and
survives restarts.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Literal

from sqlmodel import Session, select

from core.deploy import generation  # noqa: F401  (commits bump the serving change counter)
from core.deploy.enums import DeploymentMode
from core.deploy.onnx_runtime import check_runtime
from core.deploy.public import DeploymentEvent, DeploymentState
from core.deploy.rails import (
    DEFAULT_GUARD_RAILS,
    DEFAULT_STEPS,
    InvalidRequestError,
    check_guard_rails,
    still_valid,
)
from core.errors import ConflictError, NotFoundError
from core.registry import PRODUCTION, check_model_name, move_alias
from core.registry.artifacts import load_verified
from core.registry.stages import refuse_archived
from core.store import (
    Alias,
    AuditEvent,
    Deployment,
    ModelVersion,
    RegisteredModel,
    lock_for_write,
    utcnow,
)
from core.store.audit import AuditAction, record

Warm = Callable[[str, int], Any]


def _model(s: Session, name: str) -> RegisteredModel:
    check_model_name(name)
    model = s.exec(select(RegisteredModel).where(RegisteredModel.name == name)).first()
    if model is None:
        raise NotFoundError(f"No model named {name!r}. List models with `workbench models`.")
    return model


def _production(s: Session, model_id: int) -> int | None:
    row = s.exec(select(Alias).where(Alias.model_id == model_id, Alias.name == PRODUCTION)).first()
    return row.version if row else None


def _candidate(row: Deployment | None, stable: int | None) -> int | None:
    if row is None:
        return None
    return row.candidate_version if row.candidate_version != stable else None


def _state(name: str, row: Deployment | None, stable: int | None) -> DeploymentState:
    if row is None:
        return DeploymentState(name=name, stable=stable)
    candidate = _candidate(row, stable)
    return DeploymentState(
        name=name, stable=stable, candidate=candidate,
        percent=row.percent if candidate is not None else 0.0, mode=row.mode,
        steps=list(row.steps or DEFAULT_STEPS),
        guard_rails={**DEFAULT_GUARD_RAILS.as_dict(), **(row.guard_rails or {})},
        auto_advance=row.auto_advance, step_started_at=row.step_started_at,
        revision=row.revision, updated_at=row.updated_at, runtimes=dict(row.runtimes or {}))


def get_state(name: str, *, session: Session) -> DeploymentState:
    """The current rule, read from the database (stable = the production alias)."""
    model = _model(session, name)
    row = session.exec(select(Deployment).where(Deployment.model_id == model.id)).first()
    return _state(name, row, _production(session, model.id))


def _check_percent(percent: float) -> float:
    try:
        percent = float(percent)
    except (TypeError, ValueError):
        raise InvalidRequestError(f"percent must be a number from 0 to 100, not {percent!r}.") \
            from None
    if not math.isfinite(percent) or not 0 <= percent <= 100:
        raise InvalidRequestError(f"percent must be from 0 to 100, not {percent}.")
    return percent


def _check_mode(mode: str) -> DeploymentMode:
    try:
        return DeploymentMode(mode)
    except ValueError:
        raise InvalidRequestError(f"mode must be one of {', '.join(DeploymentMode)}, not "
                                  f"{mode!r}.") from None


def _check_version(s: Session, model: RegisteredModel, name: str, version: int) -> ModelVersion:
    mv = s.exec(select(ModelVersion).where(ModelVersion.model_id == model.id,
                                           ModelVersion.version == version)).first()
    if mv is None:
        raise NotFoundError(f"Model {name!r} has no version {version}. See "
                            f"`workbench versions {name}`.")
    refuse_archived(mv, name, "be deployed (stable, canary or shadow candidate)")
    return mv


def _locked(s: Session, name: str, *, create: bool = False
            ) -> tuple[RegisteredModel, Deployment | None]:
    """The model and its deployment row, held until the transaction ends.

    Every change of a deployment reads, decides and writes inside one transaction holding
    these locks: BEGIN IMMEDIATE (`lock_for_write`) on SQLite, row locks on PostgreSQL. The
    model row is locked first because a first deployment has no deployment row yet; two first
    deploys, a promote and a rollback of one model therefore queue, and each sees what the one
    before it committed. With `create`, a missing deployment row is added."""
    lock_for_write(s)
    check_model_name(name)
    model = s.exec(select(RegisteredModel).where(RegisteredModel.name == name)
                   .with_for_update()).first()
    if model is None:
        raise NotFoundError(f"No model named {name!r}. List models with `workbench models`.")
    row = s.exec(select(Deployment).where(Deployment.model_id == model.id)
                 .with_for_update()).first()
    if row is None and create:
        row = Deployment(model_id=model.id, candidate_version=None, percent=0.0,
                         steps=list(DEFAULT_STEPS))
        s.add(row)
        s.flush()
    return model, row


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


def _load(name: str, mv: ModelVersion) -> None:
    """Load the version's artifact, verified (fingerprint, trusted types): raises if it
    cannot serve."""
    load_verified(mv.artifact_path, mv.fingerprint, f"{name}:{mv.version}",
                  accepted_sklearn=mv.accepted_sklearn,
                  stored_fingerprint=mv.stored_fingerprint)


def _check_steps(steps: list[float] | None) -> list[float] | None:
    if steps is None:
        return None
    steps = sorted({_check_percent(p) for p in steps})
    if not steps or steps[-1] != 100:
        raise InvalidRequestError("steps must end at 100, e.g. [10, 50, 100].")
    return steps


def deploy(name: str, version: int, percent: float = 10.0, *, session: Session,
           mode: str = DeploymentMode.CANARY, steps: list[float] | None = None,
           guard_rails: Mapping[str, object] | None = None, auto_advance: bool | None = None,
           actor: str | None = None, reason: str = "",
           warm: Warm | None | Literal[True] = True,
           metrics: Mapping[str, object] | None = None,
           runtime: str | None = None) -> DeploymentState:
    """With no production version yet, `version` becomes production at 100 %; otherwise it
    becomes the candidate at `percent` in `mode`. `runtime` (auto, python, onnx; None keeps
    the version's) says what answers it; `onnx` needs a passed ONNX parity check, and naming
    the stable version with a runtime only changes its runtime. The version is loaded
    (verified) first — by `warm` (the server passes its cache's loader), by this function
    itself with the default, not at all with None — so a version that fails to load never
    receives traffic.
    Loading is slow, so the write lock is only taken after it; if production moved meanwhile
    (another first deploy, a promotion), this one is refused with a ConflictError instead of
    acting on what it no longer sees."""
    percent = _check_percent(percent)
    mode = _check_mode(mode)
    steps = _check_steps(steps)
    if guard_rails is not None:
        guard_rails = check_guard_rails(guard_rails)
    model = _model(session, name)
    mv = _check_version(session, model, name, version)
    stable = _production(session, model.id)
    if runtime is not None:
        runtime = check_runtime(mv, runtime, f"{name}:{version}")
        if version == stable:
            return _set_runtime(session, name, version, runtime, actor, reason)
    if version == stable:
        raise ConflictError(f"{name}:{version} is already the stable (production) version.")
    if warm is True:
        _load(name, mv)  # raises: the version never gets traffic
    elif warm is not None:
        warm(name, version)
    model, row = _locked(session, name, create=True)
    assert row is not None
    _check_version(session, model, name, version)  # archived while it loaded?
    stable_now = _production(session, model.id)
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
    previous = {"candidate": row.candidate_version, "percent": row.percent, "mode": row.mode}
    if stable is None:
        row.stable_version, row.candidate_version, row.percent = version, None, 0.0
        row.step_started_at = None
        move_alias(model, version, PRODUCTION, session=session, actor=actor,
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
        row.guard_rails = {**still_valid(row.guard_rails), **guard_rails}
    if auto_advance is not None:
        row.auto_advance = auto_advance
    if runtime is not None:
        row.runtimes = {**(row.runtimes or {}), str(version): runtime}
    _bump(row)
    session.add(row)
    record(session, action, f"model:{name}", actor=actor, reason=reason, version=version,
           percent=row.percent, mode=row.mode, previous=previous, metrics=metrics or {},
           **({"runtime": runtime} if runtime is not None else {}))
    state = _state(name, row, stable_now)
    session.commit()
    return state


def _set_runtime(session: Session, name: str, version: int, runtime: str,
                 actor: str | None, reason: str) -> DeploymentState:
    """The stable version's runtime changes; traffic does not."""
    model, row = _locked(session, name, create=True)
    assert row is not None
    stable = _production(session, model.id)
    if stable != version:
        raise ConflictError(f"{name}:{version} stopped being the stable version while this "
                            "request ran (another request); nothing was changed.")
    row.runtimes = {**(row.runtimes or {}), str(version): runtime}
    _bump(row)
    session.add(row)
    record(session, AuditAction.DEPLOYMENT_RUNTIME, f"model:{name}", actor=actor, reason=reason,
           version=version, runtime=runtime)
    state = _state(name, row, stable)
    session.commit()
    return state


def _running(session: Session, name: str, nothing: str
             ) -> tuple[RegisteredModel, Deployment, int | None, int]:
    """Locked model and row, stable, and the candidate, or ConflictError(`nothing`)."""
    model, row = _locked(session, name)
    stable = _production(session, model.id)
    candidate = _candidate(row, stable)
    if row is None or candidate is None:
        raise ConflictError(nothing.format(stable=stable))
    return model, row, stable, candidate


def set_percent(name: str, percent: float, *, session: Session, actor: str | None = None,
                reason: str = "", expect_candidate: int | None = None,
                metrics: Mapping[str, object] | None = None) -> DeploymentState:
    """Move the candidate's share (a rollout step). `expect_candidate` refuses (409) when
    another worker already changed the candidate (guard rails run in every worker)."""
    percent = _check_percent(percent)
    _, row, stable, candidate = _running(
        session, name, f"Model {name!r} has no candidate to route traffic to. Deploy a "
        f"version as the candidate first (Deployments page; CLI: "
        f"`workbench deploy {name} VERSION --percent P`).")
    _expect(name, candidate, expect_candidate, "moved")
    previous = row.percent
    row.percent, row.step_started_at = percent, utcnow()
    _bump(row)
    session.add(row)
    record(session, "deployment.percent", f"model:{name}", actor=actor, reason=reason,
           version=candidate, from_percent=previous, to_percent=percent, metrics=metrics or {})
    state = _state(name, row, stable)
    session.commit()
    return state


def promote(name: str, *, session: Session, actor: str | None = None, reason: str = "",
            expect_candidate: int | None = None,
            metrics: Mapping[str, object] | None = None) -> DeploymentState:
    """The candidate becomes stable: the production alias moves (an AliasEvent, through the
    registry's non-committing `move_alias`) in the same transaction that reads the
    candidate, so a rollback committed first leaves nothing to promote (409) rather than
    being undone."""
    model, row, stable, promoted = _running(
        session, name, f"Model {name!r} has no candidate to promote; 100 % of traffic goes "
        f"to {name}:{{stable}}.")
    _expect(name, promoted, expect_candidate, "promoted")
    percent = row.percent
    row.stable_version = promoted
    row.candidate_version, row.percent, row.step_started_at = None, 0.0, None
    move_alias(model, promoted, PRODUCTION, session=session, actor=actor,
               reason=reason or f"promoted from candidate at {percent:g} %")
    _bump(row)
    session.add(row)
    record(session, "deployment.promote", f"model:{name}", actor=actor, reason=reason,
           version=promoted, from_version=stable, percent=percent, metrics=metrics or {})
    state = _state(name, row, promoted)
    session.commit()
    return state


def rollback(name: str, *, session: Session, actor: str | None = None, reason: str = "",
             expect_candidate: int | None = None, automatic: bool = False,
             metrics: Mapping[str, object] | None = None) -> DeploymentState:
    """The kill switch: the candidate is removed and 100 % goes back to stable at once."""
    _, row, stable, candidate = _running(
        session, name, f"Model {name!r} has no candidate to roll back; 100 % of traffic "
        f"already goes to {name}:{{stable}}.")
    _expect(name, candidate, expect_candidate, "rolled back")
    previous = {"candidate": candidate, "percent": row.percent, "mode": row.mode}
    row.stable_version = stable
    row.candidate_version, row.percent, row.step_started_at = None, 0.0, None
    _bump(row)
    session.add(row)
    record(session, "deployment.rollback", f"model:{name}", actor=actor, reason=reason,
           version=candidate, stable=stable, automatic=automatic, previous=previous,
           metrics=metrics or {})
    state = _state(name, row, stable)
    session.commit()
    return state


def history(name: str, *, session: Session, limit: int = 100) -> list[DeploymentEvent]:
    """Deployment events of a model, newest first."""
    _model(session, name)
    rows = session.exec(select(AuditEvent).where(AuditEvent.entity == f"model:{name}",
                                                 AuditEvent.action.startswith("deployment."))
                        .order_by(AuditEvent.id.desc()).limit(limit)).all()
    return [DeploymentEvent(action=e.action, at=e.at, actor=e.actor, reason=e.reason,
                            detail=e.detail) for e in rows]


__all__ = ["DeploymentState", "InvalidRequestError", "check_guard_rails", "deploy",
           "get_state", "history", "promote", "rollback", "set_percent"]
