"""Workspaces are scoped in one place (core/store/scope.py): a scoped session reads, changes
and deletes only its workspace's rows, stamps what it creates, and refuses another's; names
are unique per workspace; every table is declared owned or global; old stores move into
`default`."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import delete, func, update
from sqlmodel import Session, SQLModel, select

from core.data.datasets import delete_dataset, get_dataset, store_frame
from core.errors import ConflictError, NotFoundError
from core.identity import DEFAULT_WORKSPACE
from core.identity.workspaces import add_workspace, list_workspaces, require_workspace
from core.registry import list_models, list_versions
from core.registry.versions import resolve
from core.settings import get_settings
from core.store import Database, Experiment, ModelVersion, RegisteredModel
from core.store.scope import DEFAULT_WORKSPACE as STORE_DEFAULT
from core.store.scope import Owned, WorkspaceMismatchError, scope
from tests.factories import register_numeric, store_at

# Tables whose rows belong to no workspace. A new table must be added here or inherit `Owned`.
GLOBAL_TABLES = {"worker", "workspace",
                 "user", "apikey"}  # sign-in finds these before any workspace is known


def _in(db: Database, ws: str | None) -> Session:
    return scope(Session(db.engine, expire_on_commit=False), ws)


def test_every_table_is_declared_owned_or_global() -> None:
    owned = {m.local_table.name for m in SQLModel._sa_registry.mappers
             if issubclass(m.class_, Owned)}
    undeclared = set(SQLModel.metadata.tables) - owned - GLOBAL_TABLES
    assert undeclared == set(), (
        f"{sorted(undeclared)}: inherit core.store.scope.Owned (a user's object) or add the "
        "table to GLOBAL_TABLES here (shared by every workspace)")
    assert all("workspace" in SQLModel.metadata.tables[t].c for t in owned)
    assert not owned & GLOBAL_TABLES
    assert STORE_DEFAULT == DEFAULT_WORKSPACE


def test_a_scoped_session_sees_changes_and_deletes_only_its_workspace(
        backend_db: Database) -> None:
    for ws in ("a", "b"):
        with _in(backend_db, ws) as s:
            register_numeric(s, "churn")
    with _in(backend_db, "a") as s:
        (a_model,) = s.exec(select(RegisteredModel)).all()
        assert a_model.workspace == "a"
        assert [m.name for m in list_models(session=s)] == ["churn"]
        assert s.exec(select(func.count()).select_from(ModelVersion)).one() == 1
        b_id = s.exec(select(RegisteredModel.id).where(RegisteredModel.id != a_model.id)).all()
        assert b_id == []
    with _in(backend_db, None) as s:  # unscoped (internal loops): both
        ids = {m.workspace: m.id for m in s.exec(select(RegisteredModel)).all()}
    assert set(ids) == {"a", "b"}
    with _in(backend_db, "a") as s:
        assert s.get(RegisteredModel, ids["b"]) is None
        s.exec(update(RegisteredModel).values(description="touched"))
        s.exec(delete(ModelVersion).where(ModelVersion.model_id == ids["b"]))
        s.commit()
    with _in(backend_db, "b") as s:
        assert s.get(RegisteredModel, ids["b"]).description == ""
        assert [v.version for v in list_versions("churn", session=s)] == [1]
        with pytest.raises(NotFoundError):
            resolve("churn:2", session=s)


def test_new_objects_are_stamped_and_another_workspaces_object_is_refused(
        backend_db: Database) -> None:
    with _in(backend_db, "a") as s:
        s.add(Experiment(name="e"))
        s.commit()
        assert s.exec(select(Experiment)).one().workspace == "a"
        s.add(Experiment(name="f", workspace="b"))
        with pytest.raises(WorkspaceMismatchError):
            s.flush()
        s.rollback()
        row = s.exec(select(Experiment)).one()
        row.workspace = "b"
        s.add(row)
        with pytest.raises(WorkspaceMismatchError):
            s.flush()
    with _in(backend_db, None) as s:  # unscoped and unnamed: `default`
        s.add(Experiment(name="g"))
        s.commit()
        assert s.exec(select(Experiment.workspace).where(Experiment.name == "g")).one() \
            == DEFAULT_WORKSPACE


def test_names_are_unique_per_workspace_not_across(backend_db: Database) -> None:
    for ws in ("a", "b"):
        with _in(backend_db, ws) as s:
            s.add(Experiment(name="same"))
            s.commit()
    with _in(backend_db, "a") as s:
        s.add(Experiment(name="same"))
        with pytest.raises(Exception, match="(?i)unique|duplicate"):
            s.commit()


def test_two_workspaces_uploading_one_file_keep_a_row_and_a_file_each(
        backend_db: Database) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": ["a", "b", "a", "b"]})
    stored = {}
    for ws in ("default", "b"):
        with _in(backend_db, ws) as s:
            stored[ws] = store_frame(frame, session=s, name="t", fingerprint="f" * 64)
            assert stored[ws].created
    paths = {ws: get_settings().home / st.dataset.path for ws, st in stored.items()}
    assert paths["default"] != paths["b"] and all(p.is_file() for p in paths.values())
    with _in(backend_db, "b") as s:
        with pytest.raises(NotFoundError):
            get_dataset(stored["default"].dataset.id, session=s)
        delete_dataset(stored["b"].dataset.id, session=s)
    assert paths["default"].is_file() and not paths["b"].exists()
    with _in(backend_db, "default") as s:
        assert get_dataset(stored["default"].dataset.id, session=s).fingerprint == "f" * 64


def test_workspace_registry(backend_db: Database) -> None:
    with _in(backend_db, None) as s:
        add_workspace("team-a", session=s, actor="t")
        with pytest.raises(ConflictError):
            add_workspace("team-a", session=s)
        assert [w.name for w in list_workspaces(session=s)] == ["default", "team-a"]
        assert require_workspace("team-a", session=s) == "team-a"
        with pytest.raises(NotFoundError, match="workbench workspaces add nope"):
            require_workspace("nope", session=s)


def test_an_old_store_moves_into_default(backend: str) -> None:
    """A store made by release 0011 keeps its models, datasets and experiments, all in
    `default`, and a second workspace may then reuse their names."""
    store_at("0011_tracking", [
        "INSERT INTO registeredmodel (name, description, created_at) VALUES "
        "('churn', '', CURRENT_TIMESTAMP)",
        "INSERT INTO experiment (name, description, created_at) VALUES "
        "('churn', '', CURRENT_TIMESTAMP)",
        "INSERT INTO dataset (fingerprint, name, source_filename, path, n_rows, n_cols, "
        "size_bytes, columns, warnings, created_at) VALUES ('ff', 'd', '', 'x.parquet', 1, 1, "
        "1, '[]', '[]', CURRENT_TIMESTAMP)"])
    db = Database()  # upgrades to head on first use
    try:
        with _in(db, None) as s:
            assert [w.name for w in list_workspaces(session=s)] == ["default"]
            assert s.exec(select(RegisteredModel.workspace)).all() == ["default"]
        with _in(db, "default") as s:
            assert [m.name for m in list_models(session=s)] == ["churn"]
            assert get_dataset("d", session=s).fingerprint == "ff"
        with _in(db, "b") as s:
            assert list_models(session=s) == []
            s.add(RegisteredModel(name="churn"))
            s.add(Experiment(name="churn"))
            s.commit()
    finally:
        db.dispose()
