"""The Alembic migrations build exactly the schema the SQLModel tables declare, on both
backends, and upgrading an existing store keeps its data."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import Session, SQLModel

from core.store import Database
from tests.factories import store_at

pytestmark = pytest.mark.empty_home  # they build old stores where the home's file goes


def test_migrations_match_the_models(backend_db: Database) -> None:
    with backend_db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []


def test_reopening_an_existing_store_keeps_its_registry(backend_db: Database) -> None:
    from core.registry import list_versions
    from tests.factories import register_numeric

    with Session(backend_db.engine) as s:
        register_numeric(s)
    backend_db.dispose()
    reopened = Database()  # a new process / upgraded package opening the same database
    try:
        with Session(reopened.engine) as s:
            assert [v.version for v in list_versions("churn", session=s)] == [1]
    finally:
        reopened.dispose()


def test_upgrade_from_the_first_release_keeps_jobs_and_versions(backend: str) -> None:
    """A store created by release 0001 with data in it upgrades to head without loss."""
    store_at("0001", [
        "INSERT INTO job (kind, state, model_name, target, task, metric, settings, progress,"
        " cancel_requested, log, created_at) VALUES ('search', 'COMPLETED', 'm', 'y', "
        "'binary', 'roc_auc', '{}', '{}', false, '', CURRENT_TIMESTAMP)"])
    from core.jobs.ledger import list_jobs
    from core.store import Database

    db = Database()  # upgrades to head on first use
    with db.session() as s:
        (job,) = list_jobs(session=s)
    db.dispose()
    assert (job.model_name, job.state, job.attempts, job.trigger) == ("m", "COMPLETED", 0,
                                                                      "manual")


def test_unlabelled_predictions_logged_before_0006_stop_counting_as_labelled(
        backend: str) -> None:
    """Release 0005 stored a missing label as JSON 'null'; after the upgrade such a row is
    not "labelled" (live accuracy and scorecards only see fed-back predictions)."""
    from core.monitor.live import accuracy

    store_at("0005", [
        "INSERT INTO predictionlog (request_id, model_name, version, predictions, actual, "
        f"shadow_predictions, created_at) VALUES ('r{i}', 'm', 1, '[\"a\"]', '{actual}', "
        "'null', CURRENT_TIMESTAMP)" for i, actual in enumerate(["null", '["a"]'])])
    from tests.factories import store_session

    with store_session() as s:
        labelled_once = accuracy("m", "binary", "24h", session=s)
    assert labelled_once["1"]["n"] == 1
    from core.deploy.telemetry import Telemetry
    from core.store import utcnow
    from core.store.db import Database

    t = Telemetry(Database())  # and a prediction logged now, without a label, stays unlabelled
    t.log(request_id="r9", model_name="m", version=1, predictions=["b"], shadow_version=None,
          created_at=utcnow())
    t.flush()
    with store_session() as s:
        assert accuracy("m", "binary", "24h", session=s) == labelled_once


def test_upgrade_keeps_versions_linked_to_their_jobs(backend: str) -> None:
    """Release 0001 stores a version with the job that trained it; later migrations rebuild
    the job table (SQLite has no ALTER for it), which must not trip the version's foreign key
    and leave the store un-upgradable."""
    store_at("0001", [
        "INSERT INTO job (id, kind, state, model_name, target, task, metric, settings, "
        "progress, cancel_requested, log, created_at) VALUES (1, 'search', 'COMPLETED', 'm', "
        "'y', 'binary', 'roc_auc', '{}', '{}', false, '', CURRENT_TIMESTAMP)",
        "INSERT INTO registeredmodel (id, name, description, created_at) VALUES "
        "(1, 'm', '', CURRENT_TIMESTAMP)",
        "INSERT INTO modelversion (model_id, version, artifact_path, fingerprint, size_bytes, "
        "artifact_format, task, target, metric, metrics, evaluation, input_schema, classes, "
        "estimator, params, library_versions, job_id, archived, created_by, created_at) VALUES "
        "(1, 1, 'm/1.skops', 'f', 1, 'skops', 'binary', 'y', 'roc_auc', '{}', '{}', '[]', "
        "'[]', 'rf', '{}', '{}', 1, false, '', CURRENT_TIMESTAMP)"])
    from core.store import Database

    db = Database()  # upgrades to head on first use
    with db.session() as s:
        job_ids = s.exec(text_query("SELECT job_id FROM modelversion")).all()
        if backend == "sqlite":  # the upgrade turned the keys off; every later use has them
            assert s.exec(text_query("PRAGMA foreign_keys")).one()[0] == 1
    db.dispose()
    assert [tuple(r) for r in job_ids] == [(1,)]


def text_query(sql: str):
    from sqlalchemy import text

    return text(sql)
