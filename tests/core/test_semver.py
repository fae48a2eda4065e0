"""Semantic version labels on SQLite and PostgreSQL: derived at registration by comparing
with the model's latest version (schema → MAJOR, data or search settings → MINOR, the same →
PATCH), resolved as NAME@v1.2.0, given to imported versions, and given to versions registered
before the lifecycle existed by the migration, with stages from the old archived flag and
aliases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session

from core.errors import InputError, NotFoundError
from core.registry import list_versions, register_version, resolve
from core.registry.semver import basis, next_label
from core.store import Database, Job
from core.usecases.stages import set_stage
from tests.factories import NUMERIC_SCHEMA, import_wine, numeric_pipeline, register_numeric

DATA_A, DATA_B = "a" * 64, "b" * 64
SEARCH = {"budget": 60.0, "seed": 0, "metric": "roc_auc", "sampler": "tpe", "ensemble": True}


@pytest.fixture
def s(backend_db: Database) -> Iterator[Session]:
    with Session(backend_db.engine, expire_on_commit=False) as session:
        yield session


def job(s: Session, **settings: Any) -> int:
    """A finished search's job row with these settings (what registration compares)."""
    row = Job(model_name="churn", target="y", task="binary", metric="roc_auc",
              state="COMPLETED", settings={**SEARCH, **settings})
    s.add(row)
    s.commit()
    return row.id


def version(s: Session, *, data: str, job_id: int, schema: list | None = None) -> str:
    pipe, _ = numeric_pipeline()
    return register_version(pipe, session=s, name="churn", task="binary", target="y",
                            input_schema=schema or NUMERIC_SCHEMA, classes=["no", "yes"],
                            metric="roc_auc", score=0.9, dataset_fingerprint=data,
                            job_id=job_id).semver


def test_labels_bump_by_schema_data_and_settings(s: Session) -> None:
    numeric_b_as_category = [NUMERIC_SCHEMA[0], {**NUMERIC_SCHEMA[1], "kind": "categorical"}]
    labels = [
        version(s, data=DATA_A, job_id=job(s)),                      # first
        version(s, data=DATA_A, job_id=job(s)),                      # same data, same settings
        version(s, data=DATA_B, job_id=job(s)),                      # other data
        version(s, data=DATA_B, job_id=job(s, budget=300.0)),        # other search settings
        version(s, data=DATA_B, job_id=job(s, budget=300.0),
                schema=NUMERIC_SCHEMA[::-1]),                        # columns reordered only
        version(s, data=DATA_B, job_id=job(s, budget=300.0),
                schema=numeric_b_as_category),                       # a column's type changed
        version(s, data=DATA_A, job_id=job(s), schema=NUMERIC_SCHEMA[:1]),  # a column less
        version(s, data=DATA_A, job_id=job(s), schema=NUMERIC_SCHEMA[:1]),
    ]
    assert labels == ["1.0.0", "1.0.1", "1.1.0", "1.2.0", "1.2.1", "2.0.0", "3.0.0", "3.0.1"]
    assert [v.semver for v in list_versions("churn", session=s)] == labels


def test_a_label_never_changes_and_resolves_as_name_at_v(s: Session) -> None:
    version(s, data=DATA_A, job_id=job(s))
    version(s, data=DATA_B, job_id=job(s))
    set_stage("churn", 2, "Production", session=s)
    set_stage("churn", 1, "Archived", session=s)
    assert [v.semver for v in list_versions("churn", session=s)] == ["1.0.0", "1.1.0"]
    assert resolve("churn@v1.1.0", session=s)[1].version == 2
    assert resolve("churn@1.0.0", session=s)[1].version == 1  # archived: still loadable
    assert resolve("churn:1", session=s)[1].semver == "1.0.0"  # ':' keeps the integer
    with pytest.raises(NotFoundError, match="no version labelled v9.0.0"):
        resolve("churn@v9.0.0", session=s)
    with pytest.raises(InputError, match="three numbers"):
        resolve("churn@v1.1", session=s)


def test_imported_and_plainly_registered_versions_get_labels(s: Session, tmp_path: Path
                                                             ) -> None:
    assert import_wine(s, tmp_path) == 1
    assert import_wine(s, tmp_path) == 2
    assert [v.semver for v in list_versions("wine", session=s)] == ["1.0.0", "1.0.1"]
    register_numeric(s, "plain")
    register_numeric(s, "plain", dataset_fingerprint=DATA_A)
    assert [v.semver for v in list_versions("plain", session=s)] == ["1.0.0", "1.1.0"]


def test_the_rule_is_one_function_of_schema_data_and_settings() -> None:
    one = basis(NUMERIC_SCHEMA, DATA_A, SEARCH)
    assert next_label(None, None, one) == "1.0.0"
    assert next_label("4.2.7", one, basis(NUMERIC_SCHEMA[::-1], DATA_A,
                                          dict(reversed(SEARCH.items())))) == "4.2.8"
    assert next_label("4.2.7", one, basis(NUMERIC_SCHEMA, DATA_A, {**SEARCH, "seed": 1})) \
        == "4.3.0"
    dtype_only = [{**c, "dtype": "int64"} for c in NUMERIC_SCHEMA]  # kinds unchanged
    assert next_label("4.2.7", one, basis(dtype_only, DATA_A, SEARCH)) == "4.2.8"
