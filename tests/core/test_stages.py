"""Stages of registered versions on SQLite and PostgreSQL (ARCHITECTURE.md "Registry
lifecycle"): the `production` alias IS Production, moves with `archive_existing` are one
transaction, two concurrent moves to Production have exactly one winner, Archived versions
never take traffic but still load as NAME:VERSION, and every move is audited."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import Session, select

from core.deploy import deployments as dep
from core.enums import Stage
from core.errors import ConflictError, InputError, NotFoundError
from core.registry import PRODUCTION, list_versions, load_pipeline, resolve
from core.store import Alias, AliasEvent, AuditEvent, Database, RegisteredModel
from core.usecases.aliases import set_alias
from core.usecases.stages import set_stage
from tests.factories import race, register_numeric

ROUNDS = 12
DB: dict[str, Database] = {}


@pytest.fixture
def s(backend_db: Database) -> Iterator[Session]:
    DB["now"] = backend_db
    with Session(backend_db.engine, expire_on_commit=False) as session:
        yield session
    DB.clear()


def call(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn` as one request runs it: a session of its own."""
    with DB["now"].session() as session:
        return fn(*args, session=session, **kwargs)


def stages(s: Session, name: str = "churn") -> dict[int, str]:
    s.expire_all()
    return {v.version: v.stage for v in list_versions(name, session=s)}


def productions(s: Session, name: str = "churn") -> list[int]:
    s.expire_all()
    model = s.exec(select(RegisteredModel).where(RegisteredModel.name == name)).one()
    return [a.version for a in s.exec(select(Alias).where(Alias.model_id == model.id,
                                                          Alias.name == PRODUCTION))]


def three(s: Session) -> None:
    for seed in range(3):
        register_numeric(s, seed=seed)


def test_production_is_the_production_alias_and_staging_holds_several(s: Session) -> None:
    three(s)
    assert stages(s) == {1: "None", 2: "None", 3: "None"}
    set_stage("churn", 1, "staging", session=s)  # any letter case
    set_stage("churn", 2, Stage.STAGING, session=s)
    assert stages(s) == {1: "Staging", 2: "Staging", 3: "None"}
    change = set_stage("churn", 1, "Production", session=s, reason="best on holdout")
    assert (change.from_stage, change.to_stage, change.production) == ("Staging",
                                                                       "Production", 1)
    assert productions(s) == [1]
    assert stages(s) == {1: "Production", 2: "Staging", 3: "None"}
    set_alias("churn", 3, PRODUCTION, session=s)  # the alias moved by hand: same truth
    assert stages(s) == {1: "None", 2: "Staging", 3: "Production"}
    assert [(e.alias, e.from_version, e.to_version) for e in s.exec(select(AliasEvent))] == [
        ("production", None, 1), ("production", 1, 3)]
    moves = s.exec(select(AuditEvent).where(AuditEvent.action == "version.stage")
                   .order_by(AuditEvent.id)).all()
    assert [(e.entity, e.detail["from_stage"], e.detail["to_stage"]) for e in moves] == [
        ("model:churn:1", "None", "Staging"),
        ("model:churn:2", "None", "Staging"), ("model:churn:1", "Staging", "Production")]
    assert moves[-1].reason == "best on holdout"


def test_a_move_to_the_current_stage_writes_nothing(s: Session) -> None:
    three(s)
    set_stage("churn", 2, "Staging", session=s)
    again = set_stage("churn", 2, "Staging", session=s)
    assert again.changed is False
    assert len(s.exec(select(AuditEvent).where(AuditEvent.action == "version.stage")).all()) == 1


def test_unknown_stage_and_version_are_refused(s: Session) -> None:
    three(s)
    with pytest.raises(InputError, match="None, Staging, Production, Archived"):
        set_stage("churn", 1, "Prod", session=s)
    with pytest.raises(NotFoundError, match="no version 9"):
        set_stage("churn", 9, "Staging", session=s)


def test_archive_existing_moves_both_versions_in_one_commit(s: Session) -> None:
    three(s)
    set_stage("churn", 1, "Production", session=s)
    set_alias("churn", 1, "champion", session=s)
    commits: list[int] = []
    event.listen(s, "after_commit", lambda _: commits.append(1))
    change = set_stage("churn", 2, "Production", session=s, archive_existing=True,
                       reason="retrained")
    assert commits == [1]  # the alias, both stages, the events: one transaction
    assert (change.archived_previous, change.aliases_removed) == (1, {"champion": 1})
    assert stages(s) == {1: "Archived", 2: "Production", 3: "None"}
    assert productions(s) == [2]
    entities = [e.entity for e in s.exec(select(AuditEvent).where(
        AuditEvent.action == "version.stage").order_by(AuditEvent.id))][1:]
    assert sorted(entities) == ["model:churn:1", "model:churn:2"]


def test_a_refused_move_with_archive_existing_changes_nothing(s: Session) -> None:
    three(s)
    set_stage("churn", 1, "Production", session=s)
    with pytest.raises(ConflictError, match="another request"):
        set_stage("churn", 2, "Production", session=s, archive_existing=True,
                  expected_production=3)
    assert stages(s) == {1: "Production", 2: "None", 3: "None"}


def test_without_archive_existing_the_replaced_production_falls_back_to_none(
        s: Session) -> None:
    three(s)
    set_stage("churn", 1, "Staging", session=s)
    set_stage("churn", 1, "Production", session=s)
    set_stage("churn", 2, "Production", session=s)
    assert stages(s) == {1: "None", 2: "Production", 3: "None"}


def test_two_concurrent_moves_to_production_one_wins(s: Session) -> None:
    """Both callers saw the same production; after the race exactly one moved it and the
    other got a ConflictError naming the change. Repeated so interleavings vary."""
    three(s)
    set_stage("churn", 1, "Production", session=s)
    current, bad = 1, []
    for rnd in range(ROUNDS):
        a, b = [v for v in (1, 2, 3) if v != current]
        archive = rnd % 2 == 0
        results = race(*(lambda v=v, seen=current, archive=archive: call(
            set_stage, "churn", v, "Production", archive_existing=archive,
            expected_production=seen) for v in (a, b)))
        for r in results:
            if isinstance(r, Exception) and not isinstance(r, ConflictError):
                raise r
        won = [r.version for r in results if not isinstance(r, Exception)]
        if len(won) != 1:
            bad.append(f"round {rnd}: {len(won)} winners")
            break
        assert productions(s) == won, f"round {rnd}"
        assert "another request" in str(next(r for r in results if isinstance(r, Exception)))
        if archive:  # the production it archived comes back to compete in the next round
            set_stage("churn", current, "Staging", session=s)
        current = won[0]
    assert bad == []


def test_the_serving_version_cannot_leave_production(s: Session) -> None:
    three(s)
    dep.deploy("churn", 1, session=s)  # first deployment: 1 is production and serves
    for target in ("None", "Staging", "Archived"):
        with pytest.raises(ConflictError, match="serves churn's traffic"):
            set_stage("churn", 1, target, session=s)
    assert productions(s) == [1]
    set_stage("churn", 2, "Production", session=s, archive_existing=True)  # the way out
    assert dep.get_state("churn", session=s).stable == 2
    assert stages(s) == {1: "Archived", 2: "Production", 3: "None"}


def test_an_undeployed_production_version_can_leave_production(s: Session) -> None:
    three(s)
    set_stage("churn", 1, "Production", session=s)
    change = set_stage("churn", 1, "Staging", session=s)
    assert change.production is None and productions(s) == []
    assert stages(s)[1] == "Staging"
    assert s.exec(select(AliasEvent).order_by(AliasEvent.id.desc())).first().to_version is None


def test_archived_never_takes_traffic_and_says_how_to_restore(s: Session) -> None:
    three(s)
    set_stage("churn", 2, "Archived", session=s)
    hint = "workbench stage churn 2 Staging"
    with pytest.raises(ConflictError, match=hint):
        dep.deploy("churn", 2, session=s)  # the first deployment (stable)
    dep.deploy("churn", 1, session=s)
    with pytest.raises(ConflictError, match=hint):
        dep.deploy("churn", 2, 10, session=s)  # a canary candidate
    with pytest.raises(ConflictError, match=hint):
        dep.deploy("churn", 2, 10, session=s, mode="shadow")
    with pytest.raises(ConflictError, match=hint):
        set_alias("churn", 2, PRODUCTION, session=s)
    with pytest.raises(ConflictError, match=hint):
        set_stage("churn", 2, "Production", session=s)
    name, mv, pipeline = load_pipeline("churn:2", session=s)  # explicit: for analysis
    assert (mv.version, hasattr(pipeline, "predict")) == (2, True)
    set_stage("churn", 2, "Staging", session=s)  # restored
    assert dep.deploy("churn", 2, 10, session=s).candidate == 2


def test_archiving_removes_aliases_and_the_latest_skips_it(s: Session) -> None:
    three(s)
    set_alias("churn", 3, "staging", session=s)
    change = set_stage("churn", 3, "Archived", session=s)
    assert change.aliases_removed == {"staging": 3}
    assert resolve("churn", session=s)[1].version == 2  # latest non-archived
    with pytest.raises(NotFoundError):
        resolve("churn@staging", session=s)


def test_a_candidate_cannot_be_archived(s: Session) -> None:
    three(s)
    dep.deploy("churn", 1, session=s)
    dep.deploy("churn", 2, 10, session=s)
    with pytest.raises(ConflictError, match="workbench rollback churn"):
        set_stage("churn", 2, "Archived", session=s)
    set_stage("churn", 2, "Production", session=s)  # a candidate moved to Production: done
    st = dep.get_state("churn", session=s)
    assert (st.stable, st.candidate) == (2, None)


def test_a_version_that_cannot_load_never_becomes_production(s: Session) -> None:
    from core.errors import ArtifactIntegrityError
    from core.settings import get_settings

    three(s)
    set_stage("churn", 1, "Production", session=s)
    _, mv = resolve("churn:2", session=s)
    (get_settings().home / mv.artifact_path).write_bytes(b"damaged")
    with pytest.raises(ArtifactIntegrityError):
        set_stage("churn", 2, "Production", session=s, archive_existing=True)
    assert productions(s) == [1] and stages(s) == {1: "Production", 2: "None", 3: "None"}
