"""The registry on SQLite and PostgreSQL: round trip, version numbers, aliases with their
history, reference resolution, and refusal of tampered or foreign artifacts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core.errors import ArtifactIntegrityError, NotFoundError, UntrustedArtifactError
from core.predict import predict
from core.registry import (
    alias_history,
    list_models,
    list_versions,
    load_pipeline,
    register_version,
    resolve,
)
from core.settings import get_settings
from core.store import AuditEvent, Database, Deployment
from core.usecases.aliases import remove_alias, set_alias
from tests.factories import NUMERIC_SCHEMA as SCHEMA
from tests.factories import numeric_pipeline as _fitted
from tests.factories import register_numeric as _register
from tests.factories import store_snapshot


@pytest.fixture
def s(backend_db: Database) -> Iterator[Session]:
    """A session on SQLite, and again on PostgreSQL."""
    with Session(backend_db.engine, expire_on_commit=False) as session:
        yield session


def test_round_trip_predicts_like_the_original(s: Session) -> None:
    pipe, X = _fitted()
    mv = _register(s)
    assert mv.version == 1 and len(mv.fingerprint) == 64
    assert mv.library_versions["scikit-learn"]
    name, loaded_mv, loaded = load_pipeline("churn:1", session=s)
    assert name == "churn" and loaded_mv.id == mv.id
    np.testing.assert_allclose(loaded.predict_proba(X), pipe.predict_proba(X))
    out = predict("churn", X.iloc[:, ::-1].assign(extra=1), session=s).frame  # reordered, extra
    assert list(out.columns) == ["prediction", "proba_no", "proba_yes"]
    assert list(out["prediction"]) == list(pipe.predict(X))


def test_versions_count_up_per_model_and_record_lineage(s: Session) -> None:
    assert [_register(s).version for _ in range(3)] == [1, 2, 3]
    assert _register(s, "other").version == 1
    set_alias("churn", 2, "production", session=s)
    v4 = _register(s)
    assert v4.parent_version == 2  # lineage: the production version it succeeds
    rows = list_versions("churn", session=s)
    assert [r.version for r in rows] == [1, 2, 3, 4]
    assert rows[1].aliases == ["production"]
    models = list_models(session=s)
    assert {m.name: m.versions for m in models} == {"churn": 4, "other": 1}
    assert [(m.latest_version, m.latest_score, m.aliases) for m in models] == [
        (4, 0.9, {"production": 2}), (1, 0.9, {})]


def test_listing_models_takes_the_same_queries_whatever_their_number(
        s: Session, backend_db: Database) -> None:
    """No query per model (the N+1 the listing used to make)."""
    from sqlalchemy import event

    def queries() -> int:
        seen: list[str] = []

        def count(*_args: object) -> None:
            seen.append("q")

        event.listen(backend_db.engine, "before_cursor_execute", count)
        try:
            list_models(session=s)
        finally:
            event.remove(backend_db.engine, "before_cursor_execute", count)
        return len(seen)

    _register(s, "a")
    one = queries()
    for name in ("b", "c", "d"):
        _register(s, name)
        set_alias(name, 1, "production", session=s)
    assert queries() == one


def test_concurrent_registrations_get_distinct_numbers(s: Session,
                                                       backend_db: Database) -> None:
    _register(s)  # the model exists; threads race for the next numbers
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            with Session(backend_db.engine, expire_on_commit=False) as own:
                _register(own, seed=seed)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(r.version for r in list_versions("churn", session=s)) == [1, 2, 3, 4, 5]


def test_alias_moves_are_recorded_and_resolve_as_the_contract_says(s: Session) -> None:
    for _ in range(3):
        _register(s)
    assert resolve("churn", session=s)[1].version == 3  # no production alias: latest
    set_alias("churn", 1, "production", session=s, actor="ana", reason="first release")
    set_alias("churn", 2, "production", session=s, actor="ben", reason="better AUC")
    set_alias("churn", 3, "golden", session=s)
    assert resolve("churn", session=s)[1].version == 2  # production wins over latest
    assert resolve("churn@production", session=s)[1].version == 2
    assert resolve("churn@golden", session=s)[1].version == 3
    assert resolve("churn:1", session=s)[1].version == 1
    history = alias_history("churn", session=s)
    assert [(h.alias, h.from_version, h.to_version, h.actor) for h in history] == [
        ("production", None, 1, "ana"), ("production", 1, 2, "ben"),
        ("golden", None, 3, history[2].actor)]
    assert history[1].reason == "better AUC"
    moves = s.exec(select(AuditEvent).where(AuditEvent.action == "alias.move")).all()
    assert len(moves) == 3
    with pytest.raises(NotFoundError, match="no alias 'staging'"):
        resolve("churn@staging", session=s)
    with pytest.raises(NotFoundError, match="no version 9"):
        resolve("churn:9", session=s)
    with pytest.raises(NotFoundError, match="No model named 'nope'"):
        resolve("nope", session=s)


def test_moving_production_by_hand_keeps_the_deployment_in_step(s: Session) -> None:
    """The use case moves the alias and the deployment's stable version in one commit; a
    candidate that becomes production by hand is no longer a candidate."""
    for _ in range(3):
        _register(s)
    set_alias("churn", 1, "production", session=s)
    model_id = resolve("churn:1", session=s)[1].model_id
    s.add(Deployment(model_id=model_id, stable_version=1, candidate_version=2, percent=10.0))
    s.commit()
    set_alias("churn", 2, "production", session=s, reason="by hand")
    row = s.exec(select(Deployment).where(Deployment.model_id == model_id)).one()
    s.refresh(row)
    assert (row.stable_version, row.candidate_version, row.percent) == (2, None, 0.0)
    assert row.revision == 1
    remove_alias("churn", "production", session=s)
    s.refresh(row)
    assert row.stable_version is None
    assert resolve("churn", session=s)[1].version == 3  # no production: the latest again
    set_alias("churn", 3, "staging", session=s)  # another alias leaves the row alone
    s.refresh(row)
    assert (row.stable_version, row.revision) == (None, 2)


def test_tampered_artifact_is_refused(s: Session) -> None:
    mv = _register(s)
    path = get_settings().home / mv.artifact_path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ArtifactIntegrityError, match="fails its fingerprint check"):
        load_pipeline("churn:1", session=s)


def test_read_verified_hands_out_the_stored_bytes_only_while_they_match(s: Session) -> None:
    from core.registry.artifacts import read_verified

    mv = _register(s)
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


def test_truncated_and_missing_artifacts_are_refused(s: Session) -> None:
    mv1, mv2 = _register(s), _register(s)
    p1 = get_settings().home / mv1.artifact_path
    p1.write_bytes(p1.read_bytes()[:100])
    with pytest.raises(ArtifactIntegrityError, match="modified or truncated"):
        load_pipeline("churn:1", session=s)
    (get_settings().home / mv2.artifact_path).unlink()
    with pytest.raises(ArtifactIntegrityError, match="is missing"):
        load_pipeline("churn:2", session=s)


class Evil:  # a type outside the allow-list
    def __init__(self) -> None:
        self.x = 1


def test_types_outside_the_allow_list_are_refused_even_with_a_matching_fingerprint(
        tmp_path: Path) -> None:
    from core.registry.artifacts import load_trusted_bytes

    path = tmp_path / "evil.skops"
    sio.dump({"model": Evil()}, path)
    with pytest.raises(UntrustedArtifactError, match="not known to be data"):
        load_trusted_bytes(path.read_bytes(), path.name)


def test_failed_registration_leaves_no_artifact_behind(s: Session) -> None:
    _register(s)
    before = store_snapshot()
    pipe, _ = _fitted()
    with pytest.raises(IntegrityError):
        register_version(pipe, session=s, name="churn", task="binary", target="y",
                         input_schema=SCHEMA,
                         dataset_id=12345)  # no such dataset: the foreign key refuses the row
    assert store_snapshot() == before


def test_invalid_names_and_aliases_are_refused(s: Session) -> None:
    from core.errors import InputError

    _register(s)
    with pytest.raises(InputError, match="not a valid model name"):
        _register(s, name="bad name/with slash")
    with pytest.raises(InputError, match="not a valid alias"):
        set_alias("churn", 1, "9lives", session=s)
    with pytest.raises(NotFoundError):
        set_alias("churn", 7, "production", session=s)
