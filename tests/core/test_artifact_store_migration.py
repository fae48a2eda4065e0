"""Upgrading a store written before the artifact store recorded stored fingerprints (migration
0013_artifacts), on SQLite and PostgreSQL: old versions get their fingerprint as their stored
one and keep loading (verified), old datasets keep loading, and a key set afterwards only
changes what is written next (a mixed store)."""

from __future__ import annotations

import io
import json

import pytest
import skops.io as sio

from core.data.datasets import get_dataset, load_frame
from core.fsutil import atomic_write, sha256_bytes
from core.registry import load_pipeline, resolve
from core.settings import get_settings
from core.store.sealing import new_key_text
from tests.factories import (
    NUMERIC_SCHEMA,
    numeric_pipeline,
    register_numeric,
    store_at,
    store_session,
    visits,
)

pytestmark = pytest.mark.empty_home  # they build old stores where the home's file goes


def test_an_old_store_upgrades_and_its_artifacts_keep_loading(
        backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    pipe, X = numeric_pipeline()
    buf = io.BytesIO()
    sio.dump(pipe, buf)
    model_bytes = buf.getvalue()
    atomic_write(get_settings().home / "artifacts/models/m/old.skops", model_bytes)
    table = io.BytesIO()
    visits().to_parquet(table, index=False)
    atomic_write(get_settings().home / "artifacts/datasets/abc.parquet", table.getvalue())
    store_at("0011_tracking", [
        "INSERT INTO registeredmodel (name, description, created_at) VALUES "
        "('m', '', CURRENT_TIMESTAMP)",
        "INSERT INTO modelversion (model_id, version, artifact_path, fingerprint, size_bytes, "
        "artifact_format, task, target, metric, score, metrics, evaluation, input_schema, "
        "classes, estimator, params, library_versions, created_by, created_at, stage, "
        "semver) VALUES ((SELECT id FROM registeredmodel WHERE name = 'm'), 1, "
        f"'artifacts/models/m/old.skops', '{sha256_bytes(model_bytes)}', "
        f"{len(model_bytes)}, 'skops', 'binary', 'y', 'roc_auc', 0.9, '{{}}', '{{}}', "
        f"'{json.dumps(NUMERIC_SCHEMA)}', '[\"no\", \"yes\"]', 'lr', '{{}}', '{{}}', 'old', "
        "CURRENT_TIMESTAMP, 'None', '1.0.0')",
        "INSERT INTO dataset (fingerprint, name, source_filename, path, n_rows, n_cols, "
        "size_bytes, columns, warnings, created_at) VALUES ('abc', 'visits', 'v.csv', "
        "'artifacts/datasets/abc.parquet', 160, 3, 1, '[]', '[]', CURRENT_TIMESTAMP)"])
    with store_session() as s:  # the first use upgrades to head
        _, mv = resolve("m:1", session=s)
        assert mv.stored_fingerprint == mv.fingerprint == sha256_bytes(model_bytes)
        assert (load_pipeline("m:1", session=s)[2].predict(X) == pipe.predict(X)).all()
        ds = get_dataset("visits", session=s)
        assert ds.stored_fingerprint is None and load_frame(ds).shape == visits().shape
        monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", new_key_text())
        new = register_numeric(s, name="m", seed=1)  # registration goes on, encrypted
        assert new.version == 2 and new.stored_fingerprint != new.fingerprint
        assert load_pipeline("m:1", session=s) and load_pipeline("m:2", session=s)
