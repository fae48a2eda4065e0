"""Moving a version between stages (`workbench stage`, POST /v1/models/{name}/versions/{v}/stage,
the Registry page): the stage, the `production` alias, the previous production version (with
`archive_existing`) and the deployment row that follows `production`, in ONE transaction.

Rules (ARCHITECTURE.md "Registry lifecycle"; docs/lifecycle/stages.md):
- Production is the `production` alias: moving a version there moves the alias (an AliasEvent)
  and the deployment's stable version with it; `archive_existing` archives the one it replaces.
- The version serving a deployment's traffic as stable cannot leave Production by a stage
  move (409): promote a candidate or move another version to Production first, so traffic
  never goes to nothing. A deployment's candidate cannot be Archived (roll it back first).
- An Archived version never takes traffic nor an alias: archiving removes its aliases (each
  an AliasEvent), and it must be restored (to Staging or None) before it can be produced.
- Concurrency: the version that was in Production when the request started (or the caller's
  `expected_production`) must still be there once the locks are held; otherwise the move is
  refused (409) instead of silently replacing what another request just put in Production.
  The locks are the model row's (FOR UPDATE on PostgreSQL) under SQLite's BEGIN IMMEDIATE, so
  of two concurrent moves to Production exactly one wins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

from sqlmodel import Session, select

import core.deploy.generation  # noqa: F401  (its commits bump the serving change counter)
from core.enums import Stage
from core.errors import ConflictError, NotFoundError
from core.registry import PRODUCTION, check_model_name, drop_alias, move_alias
from core.registry.aliases import alias_version, aliases_of
from core.registry.artifacts import load_verified
from core.registry.names import model_row
from core.registry.public import StageChange
from core.registry.stages import check_stage, refuse_archived, stage_of
from core.store import Deployment, ModelVersion, RegisteredModel, lock_for_write
from core.store.audit import default_actor, record
from core.usecases.aliases import _follow_production


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()  # `expected_production` not given: the production seen at the start


def _version(s: Session, model: RegisteredModel, version: int, *, lock: bool = False
             ) -> ModelVersion:
    query = select(ModelVersion).where(ModelVersion.model_id == model.id,
                                       ModelVersion.version == version)
    mv = s.exec(query.with_for_update() if lock else query).first()
    if mv is None:
        raise NotFoundError(f"Model {model.name!r} has no version {version}. See "
                            f"`workbench versions {model.name}`.")
    return mv


def _which(version: int | None) -> str:
    return "no version" if version is None else f"version {version}"


def set_stage(name: str, version: int, stage: str, *, session: Session,
              archive_existing: bool = False, reason: str = "", actor: str | None = None,
              expected_production: int | None | _Unset = UNSET,
              verify: bool | Callable[[str, int], Any] = True) -> StageChange:
    """Move NAME:VERSION to `stage` (see the module docstring). A move to Production first
    loads the version's artifact through its checks, outside the locks, so a version that
    cannot load never becomes production: `verify` True loads it here, a callable (the
    server's cache loader, which also warms it for the traffic it is about to take) does it,
    False skips it. Commits once; a refusal writes nothing."""
    target = check_stage(stage)
    check_model_name(name)
    actor = actor or default_actor()
    model = model_row(session, name)
    mv = _version(session, model, version)
    seen = alias_version(session, model.id, PRODUCTION) \
        if isinstance(expected_production, _Unset) else expected_production
    if target is Stage.PRODUCTION:
        refuse_archived(mv, name, "move to Production")
        if verify is True:
            load_verified(mv.artifact_path, mv.fingerprint, f"{name}:{version}",
                          accepted_sklearn=mv.accepted_sklearn,
                          stored_fingerprint=mv.stored_fingerprint)
        elif verify:
            verify(name, version)

    lock_for_write(session)
    model = model_row(session, name, lock=True)
    mv = _version(session, model, version, lock=True)
    production = alias_version(session, model.id, PRODUCTION)
    if production != seen:
        raise ConflictError(
            f"Not moved: {name}'s Production was {_which(seen)} when this request started, "
            f"but it is {_which(production)} now (changed by another request). Nothing was "
            f"changed; look at `workbench versions {name}` again before retrying.")
    current = stage_of(mv, production == version)
    if current is target:
        session.rollback()  # nothing to write: release the locks
        return _answer(name, mv, current, target, False, production, None, {}, reason, actor)
    deployment = session.exec(select(Deployment).where(Deployment.model_id == model.id)
                              .with_for_update()).first()
    archived_previous, removed = None, {}
    if target is Stage.PRODUCTION:
        refuse_archived(mv, name, "move to Production")  # archived while it loaded?
        move_alias(model, version, PRODUCTION, session=session, actor=actor,
                   reason=reason or f"stage: {current} → Production")
        _follow_production(session, model.id, version)
        if archive_existing and production is not None:
            previous = _version(session, model, production, lock=True)
            removed = _archive(session, model, previous, actor, reason or
                               f"archived: version {version} moved to Production")
            record(session, "version.stage", f"model:{name}:{production}", actor=actor,
                   reason=reason, from_stage=Stage.PRODUCTION, to_stage=Stage.ARCHIVED,
                   replaced_by=version)
            archived_previous = production
        production = version
    else:
        if current is Stage.PRODUCTION:
            _leave_production(session, model, version, deployment, actor, reason)
            production = None
        if target is Stage.ARCHIVED:
            if deployment is not None and deployment.candidate_version == version:
                raise ConflictError(
                    f"{name}:{version} is the deployment's candidate (it takes part of the "
                    f"traffic), so it cannot be Archived. Roll it back first (`workbench "
                    f"rollback {name}`), then archive it.")
            removed = _archive(session, model, mv, actor, reason or "archived")
        else:
            mv.stage = target
            session.add(mv)
    record(session, "version.stage", f"model:{name}:{version}", actor=actor, reason=reason,
           from_stage=current, to_stage=target, archive_existing=archive_existing,
           archived_previous=archived_previous, aliases_removed=removed)
    session.commit()
    return _answer(name, mv, current, target, True, production, archived_previous, removed,
                   reason, actor)


def traffic(name: str, *, session: Session) -> tuple[int | None, int | None]:
    """(stable, candidate) of the model's deployment — the versions taking traffic — or
    (None, None) when it was never deployed (then `production` serves nobody and may leave
    Production freely)."""
    model = model_row(session, check_model_name(name))
    row = session.exec(select(Deployment).where(Deployment.model_id == model.id)).first()
    if row is None:
        return None, None
    return row.stable_version, row.candidate_version


def _leave_production(s: Session, model: RegisteredModel, version: int,
                      deployment: Deployment | None, actor: str, reason: str) -> None:
    """Drop `production` from VERSION, unless a deployment serves it as stable (409)."""
    if deployment is not None and deployment.stable_version == version:
        raise ConflictError(
            f"{model.name}:{version} serves {model.name}'s traffic as the deployment's stable "
            f"version, so it cannot leave Production (traffic would have nowhere to go). "
            f"Move another version to Production first (`workbench stage {model.name} OTHER "
            f"Production --archive-existing`), or deploy one as a candidate and promote it "
            f"(`workbench deploy {model.name} OTHER`, then `workbench promote {model.name}`).")
    drop_alias(model, PRODUCTION, session=s, actor=actor,
               reason=reason or "stage: left Production")
    _follow_production(s, model.id, None)


def _archive(s: Session, model: RegisteredModel, mv: ModelVersion, actor: str, reason: str
             ) -> dict[str, int]:
    """Archived; the aliases still pointing at it are removed (an AliasEvent each)."""
    mv.stage = Stage.ARCHIVED
    s.add(mv)
    removed = {}
    for alias in aliases_of(s, model.id).get(mv.version, []):
        drop_alias(model, alias, session=s, actor=actor, reason=reason)
        removed[alias] = mv.version
    return removed


def _answer(name: str, mv: ModelVersion, current: Stage, target: Stage, changed: bool,
            production: int | None, archived_previous: int | None,
            removed: dict[str, int], reason: str, actor: str) -> StageChange:
    return StageChange(model=name, version=mv.version, semver=mv.semver, from_stage=current,
                       to_stage=target, changed=changed, production=production,
                       archived_previous=archived_previous, aliases_removed=removed,
                       reason=reason, actor=actor)


__all__ = ["UNSET", "set_stage", "traffic"]
