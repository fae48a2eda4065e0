"""The registry on SQLite and PostgreSQL: round trip, version numbers, aliases with their
history, reference resolution, and refusal of tampered or foreign artifacts."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sqlalchemy.exc import IntegrityError

from core.errors import ArtifactIntegrityError, NotFoundError, UntrustedArtifactError
from core.predict import predict
from core.registry import (
    alias_history,
    list_models,
    list_versions,
    load_pipeline,
    register_version,
    resolve,
    set_alias,
)
from core.settings import get_settings
from core.store import AuditEvent, session_scope
from tests.factories import NUMERIC_SCHEMA as SCHEMA
from tests.factories import numeric_pipeline as _fitted
from tests.factories import register_numeric as _register
from tests.factories import store_snapshot


def test_round_trip_predicts_like_the_original(backend: str) -> None:
    pipe, X = _fitted()
    mv = _register()
    assert mv.version == 1 and len(mv.fingerprint) == 64
    assert mv.library_versions["scikit-learn"]
    name, loaded_mv, loaded = load_pipeline("churn:1")
    assert name == "churn" and loaded_mv.id == mv.id
    np.testing.assert_allclose(loaded.predict_proba(X), pipe.predict_proba(X))
    out = predict("churn", X.iloc[:, ::-1].assign(extra=1)).frame  # reordered + extra column
    assert list(out.columns) == ["prediction", "proba_no", "proba_yes"]
    assert list(out["prediction"]) == list(pipe.predict(X))


def test_versions_count_up_per_model_and_record_lineage(backend: str) -> None:
    assert [_register().version for _ in range(3)] == [1, 2, 3]
    assert _register("other").version == 1
    set_alias("churn", 2, "production")
    v4 = _register()
    assert v4.parent_version == 2  # lineage: the production version it succeeds
    rows = list_versions("churn")
    assert [r["version"] for r in rows] == [1, 2, 3, 4]
    assert rows[1]["aliases"] == ["production"]
    assert {m["name"]: m["versions"] for m in list_models()} == {"churn": 4, "other": 1}


def test_concurrent_registrations_get_distinct_numbers(backend: str) -> None:
    _register()  # the model exists; threads race for the next numbers
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            _register(seed=seed)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r["version"] for r in list_versions("churn")) == [1, 2, 3, 4, 5]


def test_alias_moves_are_recorded_and_resolve_as_the_contract_says(backend: str) -> None:
    for _ in range(3):
        _register()
    assert resolve("churn")[1].version == 3  # no production alias: latest
    set_alias("churn", 1, "production", actor="ana", reason="first release")
    set_alias("churn", 2, "production", actor="ben", reason="better AUC")
    set_alias("churn", 3, "golden")
    assert resolve("churn")[1].version == 2  # production wins over latest
    assert resolve("churn@production")[1].version == 2
    assert resolve("churn@golden")[1].version == 3
    assert resolve("churn:1")[1].version == 1
    history = alias_history("churn")
    assert [(h["alias"], h["from_version"], h["to_version"], h["actor"]) for h in history] == [
        ("production", None, 1, "ana"), ("production", 1, 2, "ben"),
        ("golden", None, 3, history[2]["actor"])]
    assert history[1]["reason"] == "better AUC"
    with session_scope() as s:
        moves = s.exec(AuditEvent.__table__.select().where(
            AuditEvent.action == "alias.move")).all()
    assert len(moves) == 3
    with pytest.raises(NotFoundError, match="no alias 'staging'"):
        resolve("churn@staging")
    with pytest.raises(NotFoundError, match="no version 9"):
        resolve("churn:9")
    with pytest.raises(NotFoundError, match="No model named 'nope'"):
        resolve("nope")


def test_tampered_artifact_is_refused(backend: str) -> None:
    mv = _register()
    path = get_settings().home / mv.artifact_path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="fails its fingerprint check"):
        load_pipeline("churn:1")


def test_read_verified_hands_out_the_stored_bytes_only_while_they_match(backend: str) -> None:
    from core.registry.artifacts import read_verified

    mv = _register()
    path = get_settings().home / mv.artifact_path
    original = path.read_bytes()
    assert read_verified(mv.artifact_path, mv.fingerprint, "churn:1") == original
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0xFF
    path.write_bytes(bytes(tampered))
    with pytest.raises(ArtifactIntegrityError, match="churn:1 fails its fingerprint check"):
        read_verified(mv.artifact_path, mv.fingerprint, "churn:1")
    path.unlink()
    with pytest.raises(ArtifactIntegrityError, match="churn:1 is missing"):
        read_verified(mv.artifact_path, mv.fingerprint, "churn:1")


def test_truncated_and_missing_artifacts_are_refused(backend: str) -> None:
    mv1, mv2 = _register(), _register()
    p1 = get_settings().home / mv1.artifact_path
    p1.write_bytes(p1.read_bytes()[:100])
    with pytest.raises(ArtifactIntegrityError, match="modified or truncated"):
        load_pipeline("churn:1")
    (get_settings().home / mv2.artifact_path).unlink()
    with pytest.raises(ArtifactIntegrityError, match="is missing"):
        load_pipeline("churn:2")


class Evil:  # a type outside the allow-list
    def __init__(self) -> None:
        self.x = 1


def test_types_outside_the_allow_list_are_refused_even_with_a_matching_fingerprint(
        backend: str, tmp_path: Path) -> None:
    from core.registry.artifacts import load_trusted_bytes

    path = tmp_path / "evil.skops"
    sio.dump({"model": Evil()}, path)
    with pytest.raises(UntrustedArtifactError, match="not known to be data"):
        load_trusted_bytes(path.read_bytes(), path.name)


def test_failed_registration_leaves_no_artifact_behind(backend: str) -> None:
    _register()
    before = store_snapshot()
    pipe, _ = _fitted()
    with pytest.raises(IntegrityError):
        register_version(pipe, name="churn", task="binary", target="y", input_schema=SCHEMA,
                         dataset_id=12345)  # no such dataset: the foreign key refuses the row
    assert store_snapshot() == before


def test_invalid_names_and_aliases_are_refused(backend: str) -> None:
    from core.errors import WorkbenchError

    _register()
    with pytest.raises(WorkbenchError, match="not a valid model name"):
        _register(name="bad name/with slash")
    with pytest.raises(WorkbenchError, match="not a valid alias"):
        set_alias("churn", 1, "9lives")
    with pytest.raises(NotFoundError):
        set_alias("churn", 7, "production")
