"""Moving an alias, as a user does it (`workbench alias`, the Registry and Version pages):
the registry's move plus, for `production`, the deployment that serves it, in one transaction.

The registry only knows aliases; the deployment row records the production version too (as
its stable version), so whoever moves `production` by hand must keep that row in step. That
rule spans two packages, so it lives here, above both; `core.deploy`'s own changes (a first
deployment, a promotion) set their row themselves and call `core.registry.move_alias`.
"""

from __future__ import annotations

from sqlmodel import Session, select

import core.deploy.generation  # noqa: F401  (its commits bump the serving change counter)
from core.registry import PRODUCTION, check_alias_name, drop_alias, move_alias
from core.registry.names import model_row
from core.store import AliasEvent, Deployment, lock_for_write, utcnow


def set_alias(name: str, version: int, alias: str, *, session: Session,
              actor: str | None = None, reason: str = "") -> AliasEvent:
    """Point an alias at a version; every move is an AliasEvent plus an audit entry. Commits."""
    check_alias_name(alias)
    lock_for_write(session)
    model = model_row(session, name, lock=True)
    event = move_alias(model, version, alias, session=session, actor=actor, reason=reason)
    if alias == PRODUCTION:
        _follow_production(session, model.id, version)
    session.commit()
    return event


def remove_alias(name: str, alias: str, *, session: Session, actor: str | None = None,
                 reason: str = "") -> None:
    """Remove an alias (an AliasEvent to none plus an audit entry). Commits."""
    lock_for_write(session)
    model = model_row(session, name, lock=True)
    drop_alias(model, alias, session=session, actor=actor, reason=reason)
    if alias == PRODUCTION:
        _follow_production(session, model.id, None)
    session.commit()


def _follow_production(session: Session, model_id: int, production: int | None) -> None:
    """The deployment row's stable version follows `production` whoever moves it; a candidate
    that became production is done (no candidate, 0 %)."""
    row = session.exec(select(Deployment).where(Deployment.model_id == model_id)
                       .with_for_update()).first()
    if row is None or row.stable_version == production:
        return
    row.stable_version = production
    if row.candidate_version == production:
        row.candidate_version, row.percent, row.step_started_at = None, 0.0, None
    row.revision = (row.revision or 0) + 1
    row.updated_at = utcnow()
    session.add(row)


__all__ = ["remove_alias", "set_alias"]
