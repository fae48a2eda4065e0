"""The Alembic migrations build exactly the schema the SQLModel tables declare, on both
backends, and upgrading an existing store keeps its data."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

from core.store import get_engine, reset_engines


def test_migrations_match_the_models(backend: str) -> None:
    engine = get_engine()
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, SQLModel.metadata)
    assert diff == []


def test_reopening_an_existing_store_keeps_its_registry(backend: str) -> None:
    from tests.core.test_registry import _register

    _register()
    reset_engines()  # a new process / upgraded package opening the same database
    from core.registry import list_versions

    assert [v["version"] for v in list_versions("churn")] == [1]
