"""Experiments: named groups of runs, created on first use."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, func, select

from core.errors import ConflictError, NotFoundError
from core.store import Experiment, Run, lock_for_write
from core.tracking.checks import check_name
from core.tracking.public import ExperimentPublic


def create_experiment(name: str, *, session: Session, description: str = "") -> Experiment:
    """A new, empty experiment; ConflictError when the name is taken. Commits."""
    name = check_name(name)
    lock_for_write(session)
    if _find(name, session=session) is not None:
        session.rollback()
        raise ConflictError(f"An experiment named {name!r} exists already; log runs to it, "
                            "or choose another name.")
    exp = Experiment(name=name, description=description[:2000])
    session.add(exp)
    try:
        session.commit()
    except IntegrityError:  # created meanwhile by another caller (PostgreSQL)
        session.rollback()
        raise ConflictError(f"An experiment named {name!r} exists already.") from None
    return exp


def ensure_experiment(name: str, *, session: Session) -> Experiment:
    """The experiment named `name`, created if new (flushed, not committed: the caller's unit
    of work commits). Two first uses at once both get the one row."""
    name = check_name(name)
    found = _find(name, session=session)
    if found is not None:
        return found
    try:
        with session.begin_nested():  # a racing creator's row wins; read it then
            exp = Experiment(name=name)
            session.add(exp)
    except IntegrityError:
        found = _find(name, session=session)
        if found is None:
            raise
        return found
    return exp


def get_experiment(name: str, *, session: Session) -> Experiment:
    found = _find(name, session=session)
    if found is None:
        raise NotFoundError(f"No experiment named {name!r}. List them with GET "
                            "/v1/experiments or `workbench runs`.")
    return found


def list_experiments(*, session: Session) -> list[ExperimentPublic]:
    """Every experiment with its run count and newest run, newest activity first."""
    stats = (select(Run.experiment_id, func.count(Run.id).label("n"),
                    func.max(Run.start_time).label("last"))
             .group_by(Run.experiment_id).subquery())
    rows = session.exec(select(Experiment, stats.c.n, stats.c.last)
                        .join(stats, stats.c.experiment_id == Experiment.id, isouter=True)
                        .order_by(Experiment.id.desc())).all()
    out = [ExperimentPublic(id=e.id, name=e.name, description=e.description,
                            created_at=e.created_at, runs=n or 0, last_run_at=last)
           for e, n, last in rows]
    return sorted(out, key=lambda e: (e.last_run_at or e.created_at), reverse=True)


def experiment_public(exp: Experiment, *, session: Session) -> ExperimentPublic:
    n, last = session.exec(select(func.count(Run.id), func.max(Run.start_time))
                           .where(Run.experiment_id == exp.id)).one()
    return ExperimentPublic(id=exp.id, name=exp.name, description=exp.description,
                            created_at=exp.created_at, runs=n or 0, last_run_at=last)


def _find(name: str, *, session: Session) -> Experiment | None:
    return session.exec(select(Experiment).where(Experiment.name == name)).first()
