"""Aliases (`production`, `staging`, free-form ones) and their history of moves.

The functions here never commit: a move is one step of a use case that also locks the model
and may change other rows in the same transaction (`core.usecases.aliases.set_alias` keeps a
deployment in step with `production`; `core.deploy` promotes a candidate). The caller holds
the model row's lock (`model_row(..., lock=True)`) and commits once.
"""

from __future__ import annotations

from sqlmodel import Session, select

from core.enums import Stage
from core.errors import NotFoundError
from core.registry.names import PRODUCTION, check_alias_name, model_row
from core.registry.public import AliasEventPublic
from core.registry.stages import refuse_archived
from core.store import Alias, AliasEvent, ModelVersion, RegisteredModel, utcnow
from core.store.audit import default_actor, record


def alias_version(session: Session, model_id: int, alias: str) -> int | None:
    """The version `alias` points at, if it is set."""
    row = session.exec(select(Alias).where(Alias.model_id == model_id,
                                           Alias.name == alias)).first()
    return row.version if row else None


def aliases_of(session: Session, model_id: int) -> dict[int, list[str]]:
    """Version -> the aliases pointing at it, names sorted."""
    out: dict[int, list[str]] = {}
    for a in session.exec(select(Alias).where(Alias.model_id == model_id)
                          .order_by(Alias.name)):
        out.setdefault(a.version, []).append(a.name)
    return out


def move_alias(model: RegisteredModel, version: int, alias: str, *, session: Session,
               actor: str | None = None, reason: str = "") -> AliasEvent:
    """Point `alias` of `model` at `version`: the alias row, an AliasEvent and an audit entry,
    added to the caller's transaction. Does NOT commit (see the module docstring)."""
    check_alias_name(alias)
    name = model.name
    mv = session.exec(select(ModelVersion).where(ModelVersion.model_id == model.id,
                                                 ModelVersion.version == version)).first()
    if mv is None:
        raise NotFoundError(f"Model {name!r} has no version {version}.")
    refuse_archived(mv, name, f"be given the alias {alias!r}")
    if alias == PRODUCTION and mv.stage != Stage.NONE:
        mv.stage = Stage.NONE  # what it falls back to when `production` moves on (stages.py)
        session.add(mv)
    row = session.exec(select(Alias).where(Alias.model_id == model.id, Alias.name == alias)
                       .with_for_update()).first()
    previous = row.version if row else None
    if row is None:
        row = Alias(model_id=model.id, name=alias, version=version)
    row.version, row.updated_at = version, utcnow()
    session.add(row)
    event = AliasEvent(model_id=model.id, alias=alias, from_version=previous,
                       to_version=version, actor=actor or default_actor(), reason=reason)
    session.add(event)
    record(session, "alias.move", f"model:{name}", actor=actor, reason=reason, alias=alias,
           from_version=previous, to_version=version)
    return event


def drop_alias(model: RegisteredModel, alias: str, *, session: Session,
               actor: str | None = None, reason: str = "") -> int:
    """Remove `alias` of `model` (an AliasEvent to None and an audit entry) in the caller's
    transaction; returns the version it pointed at. Does NOT commit."""
    row = session.exec(select(Alias).where(Alias.model_id == model.id,
                                           Alias.name == alias)).first()
    if row is None:
        raise NotFoundError(f"Model {model.name!r} has no alias {alias!r}.")
    session.add(AliasEvent(model_id=model.id, alias=alias, from_version=row.version,
                           to_version=None, actor=actor or default_actor(), reason=reason))
    record(session, "alias.remove", f"model:{model.name}", actor=actor, reason=reason,
           alias=alias, from_version=row.version)
    session.delete(row)
    return row.version


def alias_history(name: str, *, session: Session) -> list[AliasEventPublic]:
    """Every alias move of a model, oldest first."""
    model = model_row(session, name)
    rows = session.exec(select(AliasEvent).where(AliasEvent.model_id == model.id)
                        .order_by(AliasEvent.id)).all()
    return [AliasEventPublic.model_validate(e) for e in rows]
