"""Upgrading a store written before the lifecycle existed (migration 0010_stages), on SQLite and
PostgreSQL: the archived flag becomes Archived, the `production` holder is in Production, the
`staging` holder in Staging, everyone else None; labels are derived in version order by the
registration rule, and registration continues from them."""

from __future__ import annotations

import json

import pytest

from core.deploy import deployments as dep
from core.errors import ConflictError
from core.registry import list_versions, resolve
from tests.factories import NUMERIC_SCHEMA, register_numeric, store_at, store_session

pytestmark = pytest.mark.empty_home  # they build old stores where the home's file goes

OLD_SCHEMA = [{"name": "a", "kind": "numeric", "dtype": "float64"}]
SETTINGS = {"budget": 60.0, "seed": 0}


def _job(marker: str) -> str:
    """A finished job; `marker` (its target) finds it again: no explicit ids, so PostgreSQL's
    sequences stay in step for rows written after the upgrade."""
    return ("INSERT INTO job (kind, state, model_name, target, task, metric, settings, "
            "progress, cancel_requested, log, created_at) VALUES "
            f"('search', 'COMPLETED', 'm', '{marker}', 'binary', 'roc_auc', "
            f"'{json.dumps(SETTINGS)}', '{{}}', false, '', CURRENT_TIMESTAMP)")


def _version(model: str, version: int, schema: list, data: str | None,
             job: str | None, archived: bool) -> str:
    job_id = f"(SELECT id FROM job WHERE target = '{job}')" if job else "NULL"
    return (
        "INSERT INTO modelversion (model_id, version, artifact_path, fingerprint, "
        "size_bytes, artifact_format, task, target, metric, score, metrics, evaluation, "
        "input_schema, classes, estimator, params, library_versions, dataset_fingerprint, "
        "job_id, archived, created_by, created_at) VALUES "
        f"((SELECT id FROM registeredmodel WHERE name = '{model}'), {version}, "
        f"'artifacts/{model}{version}.skops', '{'0' * 64}', 1, "
        "'skops', 'binary', 'y', 'roc_auc', 0.9, '{}', '{}', "
        f"'{json.dumps(schema)}', '[]', 'lr', '{{}}', '{{}}', "
        f"{'NULL' if data is None else repr(data)}, {job_id}, "
        f"{'true' if archived else 'false'}, 'old', CURRENT_TIMESTAMP)")


def test_an_old_store_gets_stages_and_labels(backend: str) -> None:
    store_at("0009", [
        "INSERT INTO registeredmodel (name, description, created_at) VALUES "
        "('m', '', CURRENT_TIMESTAMP), ('n', '', CURRENT_TIMESTAMP)",
        _job("j1"), _job("j2"),
        _version("m", 1, OLD_SCHEMA, "d1", "j1", archived=True),
        _version("m", 2, OLD_SCHEMA, "d1", "j2", archived=False),  # same data and settings
        _version("m", 3, OLD_SCHEMA, "d2", None, archived=False),  # other data, no job
        _version("m", 4, NUMERIC_SCHEMA, None, None, archived=False),  # other schema
        _version("n", 1, OLD_SCHEMA, None, None, archived=False),
        *(f"INSERT INTO alias (model_id, name, version, updated_at) SELECT id, '{alias}', "
          f"{v}, CURRENT_TIMESTAMP FROM registeredmodel WHERE name = 'm'"
          for alias, v in (("production", 2), ("staging", 3))),
    ])
    with store_session() as s:  # the first use upgrades to head
        versions = list_versions("m", session=s)
        assert [(v.version, v.stage, v.semver, v.archived) for v in versions] == [
            (1, "Archived", "1.0.0", True), (2, "Production", "1.0.1", False),
            (3, "Staging", "1.1.0", False), (4, "None", "2.0.0", False)]
        assert [(v.stage, v.semver) for v in list_versions("n", session=s)] == [
            ("None", "1.0.0")]
        assert resolve("m@v1.1.0", session=s)[1].version == 3
        assert resolve("m", session=s)[1].version == 2  # production, as before
        with pytest.raises(ConflictError, match="workbench stage m 1 Staging"):
            dep.deploy("m", 1, session=s)
        assert register_numeric(s, "m").semver == "2.0.1"  # the same basis as version 4
