"""`rotate-key` (core/store/rotation.py): every artifact re-encrypted under the new key, one
at a time, atomically; interrupted and resumed without loss; no version's identity changes."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from core import tracking
from core.data.datasets import ingest_bytes, load_frame
from core.registry import list_versions, load_pipeline
from core.store import AuditEvent, Dataset, ModelVersion
from core.store import artifacts as store
from core.store.rotation import rotate, rotated_key
from core.store.sealing import ArtifactKeyError, new_key_text, parse_key, sealed_key_id
from tests.factories import numeric_pipeline, register_numeric, visits

KEY_A, KEY_B = new_key_text(), new_key_text()
B = parse_key(KEY_B, "new")


def _identity(s: Session) -> list[tuple]:
    return [(v.version, v.semver, v.fingerprint, v.size_bytes)
            for v in list_versions("churn", session=s)]


def _predictions(s: Session) -> list[list]:
    _, X = numeric_pipeline()
    return [load_pipeline(f"churn:{n}", session=s)[2].predict_proba(X).tolist()
            for n in (1, 2)]


def _key_ids() -> set[str | None]:
    return {sealed_key_id(store.head(e.key)) for e in store.entries("")}


@pytest.fixture
def mixed(session: Session, monkeypatch: pytest.MonkeyPatch) -> Session:
    """A store with a plaintext version and dataset, then a key-A version and run artifact."""
    register_numeric(session, seed=0)
    ingest_bytes(visits().to_csv(index=False).encode(), "visits.csv", session=session)
    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", KEY_A)
    register_numeric(session, seed=1)
    with tracking.start_run(experiment="e") as run:
        run.log_artifact(b"notes", "notes.txt")
    session.info["run_id"] = run.run_id
    return session


def test_rotation_moves_every_artifact_and_keeps_every_identity(
        mixed: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    s = mixed
    before, predictions = _identity(s), _predictions(s)
    old_paths = set(s.exec(select(ModelVersion.artifact_path)).all())
    report = rotate(B, session=s, actor="ops")
    assert report.done and len(report.rotated) == 4 and report.failed == []
    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", KEY_B)  # the old key is gone from now on
    s.expire_all()
    assert _identity(s) == before and _predictions(s) == predictions
    assert _key_ids() == {B.id}  # every stored file, and no old one is left behind
    assert old_paths.isdisjoint(s.exec(select(ModelVersion.artifact_path)).all())
    (ds,) = s.exec(select(Dataset)).all()
    assert load_frame(ds).shape == visits().shape
    run_id = s.info["run_id"]
    assert tracking.read_artifact(run_id, "notes.txt", session=s)[1] == b"notes"
    events = s.exec(select(AuditEvent).where(AuditEvent.action == "artifact.rotate_key")).all()
    assert {e.entity for e in events} == {"model:churn:1", "model:churn:2", f"dataset:{ds.id}"}
    assert rotate(B, session=s).rotated == []  # nothing left: a second run is a no-op


def test_a_rotation_interrupted_halfway_resumes_without_loss(
        mixed: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    s = mixed
    before, predictions = _identity(s), _predictions(s)
    first = rotate(B, session=s, limit=1)  # stopped after one artifact
    assert len(first.rotated) == 1 and first.remaining == 3 and not first.done
    # meanwhile servers read both keys: the old one as theirs, the new one as a reading key
    monkeypatch.setenv("WORKBENCH_ARTIFACT_OLD_KEYS", KEY_B)
    s.expire_all()
    assert _predictions(s) == predictions
    # killed between an upload and its commit: the next artifact's new file exists, its row
    # still names the old one
    v2 = s.exec(select(ModelVersion).where(ModelVersion.version == 2)).one()
    store.write_stored(rotated_key(store.key_of(v2.artifact_path), B.id), b"partial upload")
    assert _predictions(s) == predictions  # the leftover is named by no row
    second = rotate(B, session=s)
    assert second.done and second.already == 1 and len(second.rotated) == 3
    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", KEY_B)
    monkeypatch.delenv("WORKBENCH_ARTIFACT_OLD_KEYS")
    s.expire_all()
    assert _identity(s) == before and _predictions(s) == predictions
    assert _key_ids() == {B.id}


def test_a_rotation_without_the_old_key_leaves_that_artifact_and_says_why(
        mixed: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    s = mixed
    monkeypatch.delenv("WORKBENCH_ARTIFACT_KEY")  # key A is not known to this process
    v2_path = s.exec(select(ModelVersion.artifact_path).where(ModelVersion.version == 2)).one()
    report = rotate(B, session=s)
    failed = [f for f in report.failed if f.startswith("churn:2")]
    assert failed and "WORKBENCH_ARTIFACT_KEY" in failed[0] and not report.done
    s.expire_all()
    assert s.exec(select(ModelVersion.artifact_path)
                  .where(ModelVersion.version == 2)).one() == v2_path  # untouched
    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", KEY_B)
    with pytest.raises(ArtifactKeyError, match="churn:2"):  # still under A, and named
        load_pipeline("churn:2", session=s)
    assert load_pipeline("churn:1", session=s)  # the plaintext one went to B


def test_rotated_names_are_one_per_artifact_and_key() -> None:
    assert rotated_key("models/churn/abc.skops", "01") == "models/churn/abc.k01.skops"
    assert rotated_key("models/churn/abc.k01.skops", "02") == "models/churn/abc.k02.skops"
    assert rotated_key("datasets/f00.1234.parquet", "02") == "datasets/f00.k02.parquet"
