"""The audit log as users rely on it: every action name in core is a known AuditAction (with
its stored string), the query filters and orders as documented on SQLite and PostgreSQL, and
the database itself refuses to change or delete an entry."""

from __future__ import annotations

import ast
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from core.errors import InputError
from core.store import AuditEvent, Database
from core.store.audit import AuditAction, record
from core.store.audit_log import (
    action_text,
    actors,
    detail_text,
    entity_text,
    list_audit,
    parse_moment,
)
from tests.factories import ROOT, register_numeric

NOW = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def _literal_actions() -> set[str]:
    """Every string literal passed as the action of a `record(...)` call in core/ (including
    both arms of `"a" if x else "b"`, and `action = "..."` assignments fed to it)."""
    found: set[str] = set()
    for path in (ROOT / "core").rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in (
                    "record", "record_skip") and len(node.args) >= 2:
                for sub in ast.walk(node.args[1]):
                    if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                        found.add(sub.value)
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "action"
                                                    for t in node.targets):
                v = node.value
                if isinstance(v, ast.Constant) and isinstance(v.value, str) and "." in v.value:
                    found.add(v.value)
    return found


def test_every_action_core_records_is_a_named_audit_action() -> None:
    literals = _literal_actions()
    assert {"deployment.promote", "alias.move", "schedule.skipped", "gate.failed"} <= literals
    unknown = literals - {a.value for a in AuditAction}
    assert not unknown, f"add these to core.store.audit.AuditAction: {sorted(unknown)}"
    assert all(a.label for a in AuditAction)  # each has a readable phrase


def _seed(s: Session) -> None:
    rows = [("alice", AuditAction.DEPLOYMENT_CANDIDATE, "model:churn", {"version": 2}, 50),
            ("bob", AuditAction.ALIAS_MOVE, "model:churn:2", {"alias": "staging"}, 40),
            ("alice", AuditAction.DATASET_CREATE, "dataset:3", {"name": "x.csv"}, 30),
            ("bob", AuditAction.DEPLOYMENT_PROMOTE, "model:churn", {}, 20),
            ("carol", AuditAction.DEPLOYMENT_CANDIDATE, "model:churn_2", {}, 10)]
    for actor, action, entity, detail, minutes_ago in rows:
        ev = record(s, action, entity, actor=actor, reason=f"{actor} said so", **detail)
        ev.at = NOW - timedelta(minutes=minutes_ago)
    s.commit()


def test_the_log_is_read_newest_first_with_filters(backend_db: Database) -> None:
    with Session(backend_db.engine) as s:
        _seed(s)
        page = list_audit(session=s)
        assert page.total == 5
        assert [e.actor for e in page.entries] == ["carol", "bob", "alice", "bob", "alice"]
        first = page.entries[-1]
        assert (first.action, first.entity, first.reason, first.detail) == (
            "deployment.candidate", "model:churn", "alice said so", {"version": 2})
        # an entity finds what lies under it, not a name it is the prefix of ("churn_2")
        assert [e.action for e in list_audit(session=s, entity="model:churn").entries] == [
            "deployment.promote", "alias.move", "deployment.candidate"]
        assert list_audit(session=s, entity="model:churn%").total == 0  # no wildcards
        # a family, or one action
        assert list_audit(session=s, action="deployment").total == 3
        assert list_audit(session=s, action="deployment.promote").total == 1
        assert [e.entity for e in list_audit(session=s, actor="bob").entries] == [
            "model:churn", "model:churn:2"]
        window = list_audit(session=s, since=NOW - timedelta(minutes=40),
                            until=NOW - timedelta(minutes=20))
        assert [e.action for e in window.entries] == ["dataset.create", "alias.move"]
        paged = list_audit(session=s, limit=2, offset=2)
        assert ([e.actor for e in paged.entries], paged.total) == (["alice", "bob"], 5)
        assert actors(session=s) == ["alice", "bob", "carol"]


def test_bad_filters_say_what_to_write(db: Database) -> None:
    with Session(db.engine) as s:
        with pytest.raises(InputError, match="Unknown audit action 'deploy'.*deployment"):
            list_audit(session=s, action="deploy")
        with pytest.raises(InputError, match="limit=0"):
            list_audit(session=s, limit=0)
        with pytest.raises(InputError, match="until must be later"):
            list_audit(session=s, since=NOW, until=NOW)
    with pytest.raises(InputError, match="24h"):
        parse_moment("yesterday")
    assert parse_moment("24h", now=NOW) == NOW - timedelta(days=1)
    assert parse_moment("2026-12-01") == datetime(2026, 12, 1, tzinfo=UTC)
    assert parse_moment("2026-12-01T10:00+02:00") == datetime(2026, 12, 1, 8, tzinfo=UTC)


def test_entries_read_as_sentences() -> None:
    assert entity_text("model:churn:3") == "churn version 3"
    assert entity_text("model:churn") == "churn"
    assert entity_text("job:7") == "job 7"
    assert action_text("deployment.rollback") == "rolled back"
    assert action_text("report.export") == "report.export"  # a newer release's: as stored
    assert action_text("user.add") == "added a user"
    assert detail_text({"version": 3, "percent": 10.0, "previous": None, "metrics": {},
                        "by": {"rows": 2}}) == "version 3 · percent 10 · by rows 2"


def test_the_database_refuses_to_change_or_delete_an_entry(backend_db: Database) -> None:
    """Whatever holds the database (a script, a bug), the log stays as written; adding
    entries still works."""
    with Session(backend_db.engine) as s:
        register_numeric(s)  # writes entries through the use cases
        before = [(e.id, e.actor, e.action) for e in list_audit(session=s).entries]
        assert before
    for sql in ("UPDATE auditevent SET actor = 'mallory'", "DELETE FROM auditevent",
                *(["TRUNCATE auditevent"] if backend_db.engine.dialect.name == "postgresql"
                  else [])):
        with pytest.raises(DBAPIError, match="append-only"), backend_db.engine.begin() as c:
            c.execute(text(sql))
    with Session(backend_db.engine) as s:
        with pytest.raises(DBAPIError, match="append-only"):
            s.delete(s.get(AuditEvent, before[0][0]))
            s.commit()
    with Session(backend_db.engine) as s:
        assert [(e.id, e.actor, e.action) for e in list_audit(session=s).entries] == before
        record(s, AuditAction.DATASET_CREATE, "dataset:9", actor="alice")
        s.commit()
        assert list_audit(session=s).total == len(before) + 1


def test_an_old_store_upgrades_to_an_append_only_log(backend: str) -> None:
    from tests.factories import store_at, store_session

    store_at("0012_identity", [
        "INSERT INTO auditevent (at, actor, action, entity, reason, detail) VALUES "
        "(CURRENT_TIMESTAMP, 'ui', 'alias.move', 'model:m', 'old', '{}')"])
    with store_session() as s:  # opening upgrades to head
        (old,) = list_audit(session=s).entries
        assert (old.actor, old.action, old.reason) == ("ui", "alias.move", "old")
    with store_session() as s, pytest.raises(DBAPIError, match="append-only"):
        s.execute(text("UPDATE auditevent SET reason = 'rewritten'"))
        s.commit()

