"""Deployment changes racing each other, on SQLite and PostgreSQL: two threads released
together by a barrier, many rounds. After any interleaving there is at most one production,
the deployment row agrees with the alias, the loser gets a ConflictError, and a rollback that
answered OK is never undone by a promote that started before it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import delete
from sqlmodel import select

from core.deploy import deployments as dep
from core.errors import ConflictError
from core.registry import PRODUCTION
from core.store import Alias, Database, Deployment, RegisteredModel
from tests.factories import race, register

ROUNDS = 30
DB: dict[str, Database] = {}  # the store of the running test (each caller: its own session)


@pytest.fixture(autouse=True)
def store(backend_db: Database) -> Iterator[Database]:
    DB["now"] = backend_db
    yield backend_db
    DB.clear()


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn` as one request would run it: a session of its own, rolled back on error."""
    with DB["now"].session() as s:
        return fn(*args, session=s, **kwargs)


def stored(name: str = "churn") -> tuple[list[int], int | None, int | None]:
    """(versions holding the production alias, deployment row's stable, row's candidate)."""
    with DB["now"].session() as s:
        model = s.exec(select(RegisteredModel).where(RegisteredModel.name == name)).one()
        prod = [a.version for a in s.exec(select(Alias).where(
            Alias.model_id == model.id, Alias.name == PRODUCTION))]
        row = s.exec(select(Deployment).where(Deployment.model_id == model.id)).first()
        return prod, row.stable_version if row else None, row.candidate_version if row else None


def verdict(bad: list[str]) -> str:
    rounds = {b.split(":")[0] for b in bad}
    return f"violations in {len(rounds)} of {ROUNDS} rounds: " + "; ".join(bad[:6])


def outcome(results: list[Any]) -> list[str]:
    """'ok' or the error type, per call; anything but a ConflictError is a bug of its own."""
    for r in results:
        if isinstance(r, Exception) and not isinstance(r, ConflictError):
            raise r
    return ["ok" if not isinstance(r, Exception) else "conflict" for r in results]


@pytest.mark.slow  # 30 rounds: several seconds on a busy machine
def test_rollback_racing_promote_is_never_undone() -> None:
    register(seed=0)
    register(seed=1)
    call(dep.deploy, "churn", 1, warm=None)
    bad: list[str] = []
    for i in range(ROUNDS):
        stable = call(dep.get_state, "churn").stable
        candidate = 2 if stable == 1 else 1
        call(dep.deploy, "churn", candidate, 10, warm=None)
        results = race(lambda: call(dep.rollback, "churn", reason="kill switch"),
                       lambda: call(dep.promote, "churn", reason="ship it"))
        rolled, promoted = outcome(results)
        prod, row_stable, row_candidate = stored()
        if sorted((rolled, promoted)) != ["conflict", "ok"]:
            bad.append(f"round {i}: rollback {rolled}, promote {promoted}")
        if len(prod) != 1 or row_stable != prod[0] or row_candidate not in (None, prod[0]):
            bad.append(f"round {i}: production {prod}, row stable {row_stable}, "
                       f"row candidate {row_candidate}")
        if rolled == "ok" and prod == [candidate]:
            bad.append(f"round {i}: rolled-back {candidate} became production")
        if promoted == "ok" and rolled != "ok" and prod != [candidate]:
            bad.append(f"round {i}: promote answered OK but production is {prod}")
    assert not bad, verdict(bad)


@pytest.mark.slow  # 30 rounds: several seconds on a busy machine
def test_two_promotes_one_wins() -> None:
    register(seed=0)
    register(seed=1)
    call(dep.deploy, "churn", 1, warm=None)
    bad: list[str] = []
    for i in range(ROUNDS):
        stable = call(dep.get_state, "churn").stable
        candidate = 2 if stable == 1 else 1
        call(dep.deploy, "churn", candidate, 10, warm=None)
        results = outcome(race(lambda: call(dep.promote, "churn"),
                               lambda: call(dep.promote, "churn")))
        prod, row_stable, _ = stored()
        if sorted(results) != ["conflict", "ok"]:
            bad.append(f"round {i}: promotes answered {results}")
        if prod != [candidate] or row_stable != candidate:
            bad.append(f"round {i}: production {prod}, row stable {row_stable}")
    assert not bad, verdict(bad)


@pytest.mark.slow  # 30 rounds: several seconds on a busy machine
def test_two_first_deploys_one_wins_and_the_row_agrees() -> None:
    """Both requests load their version at the same time (the slow part, outside the
    transaction), so both saw a model without production: one becomes production, the other
    is refused and names what changed."""
    register(seed=0)
    register(seed=1)
    bad: list[str] = []
    for i in range(ROUNDS):
        with DB["now"].session(write=True) as s:  # back to a model that was never deployed
            s.exec(delete(Alias))
            s.exec(delete(Deployment))
        loading = threading.Barrier(2)

        def warm(name: str, version: int, loading: threading.Barrier = loading) -> None:
            loading.wait(timeout=30)

        results = race(lambda: call(dep.deploy, "churn", 1, warm=warm),
                       lambda: call(dep.deploy, "churn", 2, warm=warm))
        answers = outcome(results)
        prod, row_stable, row_candidate = stored()
        if sorted(answers) != ["conflict", "ok"]:
            bad.append(f"round {i}: first deploys answered {answers}")
        else:
            winner = answers.index("ok") + 1
            loser = results[answers.index("conflict")]
            if prod != [winner] or "moved from none to version" not in str(loser):
                bad.append(f"round {i}: {winner} won, production {prod}, loser said {loser}")
        if len(prod) != 1 or row_stable != prod[0] or row_candidate is not None:
            bad.append(f"round {i}: production {prod}, row stable {row_stable}, "
                       f"row candidate {row_candidate}")
    assert not bad, verdict(bad)


def test_a_stale_expectation_is_refused_and_names_the_change() -> None:
    """The API passes the candidate it showed metrics for: after a rollback, a promote of
    that candidate is a 409, even if the same version is deployed again meanwhile under a new
    candidate."""
    for seed in range(3):
        register(seed=seed)
    call(dep.deploy, "churn", 1, warm=None)
    call(dep.deploy, "churn", 2, 10, warm=None)
    call(dep.rollback, "churn")
    call(dep.deploy, "churn", 3, 10, warm=None)
    try:
        call(dep.promote, "churn", expect_candidate=2)
    except ConflictError as exc:
        assert "churn:2 was the candidate" in str(exc) and "churn:3" in str(exc)
    else:
        raise AssertionError("promoting a candidate that was rolled back must be refused")
    assert stored() == ([1], 1, 3)


def test_moving_production_by_alias_keeps_the_row_in_step() -> None:
    from core.usecases.aliases import set_alias

    register(seed=0)
    register(seed=1)
    call(dep.deploy, "churn", 1, warm=None)
    call(dep.deploy, "churn", 2, 10, warm=None)
    call(set_alias, "churn", 2, PRODUCTION, reason="by hand")
    assert stored() == ([2], 2, None)
    assert call(dep.get_state, "churn").candidate is None
