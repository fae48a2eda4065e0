"""Encryption at rest (WORKBENCH_ARTIFACT_KEY): sealed on write, verified then opened on read,
a wrong or missing key is an error naming the artifact and what to set (never garbage),
tampered bytes are refused, and stores mixing plaintext and encrypted artifacts keep working."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from core import tracking
from core.data.datasets import ingest_bytes, load_frame
from core.errors import ArtifactIntegrityError, SettingsError
from core.fsutil import sha256_bytes
from core.registry import load_pipeline
from core.registry.artifacts import read_verified
from core.settings import get_settings
from core.store import sealing
from core.store.sealing import MAGIC, ArtifactKeyError, new_key_text, parse_key
from tests.factories import numeric_pipeline, register_numeric, store_session, visits

KEY_A, KEY_B = new_key_text(), new_key_text()


def _stored(mv) -> bytes:
    return (get_settings().home / mv.artifact_path).read_bytes()


def test_a_sealed_version_round_trips_with_its_identity_unchanged(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", KEY_A)
    mv = register_numeric(session)
    stored = _stored(mv)
    assert stored.startswith(MAGIC) and b"sklearn" not in stored  # no readable pipeline
    assert mv.stored_fingerprint == sha256_bytes(stored) != mv.fingerprint
    pipe, X = numeric_pipeline()
    _, _, loaded = load_pipeline("churn:1", session=session)
    assert (loaded.predict_proba(X) == pipe.predict_proba(X)).all()
    # the version's fingerprint is its plaintext's (the identity), what a download hands out
    plain = read_verified(mv.artifact_path, mv.fingerprint, "churn:1",
                          stored_fingerprint=mv.stored_fingerprint)
    assert sha256_bytes(plain) == mv.fingerprint and len(plain) == mv.size_bytes


def test_datasets_and_run_artifacts_are_sealed_too(session: Session,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", KEY_A)
    ds = ingest_bytes(visits().to_csv(index=False).encode(), "visits.csv",
                      session=session).dataset
    assert (get_settings().home / ds.path).read_bytes().startswith(MAGIC)
    assert load_frame(ds).shape == visits().shape
    with tracking.start_run(experiment="e") as run:
        run.log_artifact(b"secret notes", "notes.txt")
    assert (tracking.run_root(run.run_id) / "notes.txt").read_bytes().startswith(MAGIC)
    with store_session() as s:
        assert tracking.read_artifact(run.run_id, "notes.txt", session=s)[1] == b"secret notes"
        assert [a.size_bytes for a in tracking.list_artifacts(run.run_id, session=s)] == [12]


def test_a_wrong_or_missing_key_names_the_artifact_and_what_to_set(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", KEY_A)
    register_numeric(session)
    a_id = parse_key(KEY_A, "a").id
    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", KEY_B)
    with pytest.raises(ArtifactKeyError) as wrong:
        load_pipeline("churn:1", session=session)
    assert "churn:1" in wrong.value.message and a_id in wrong.value.message
    assert "WORKBENCH_ARTIFACT_KEY" in wrong.value.message
    monkeypatch.delenv("WORKBENCH_ARTIFACT_KEY")
    with pytest.raises(ArtifactKeyError, match="WORKBENCH_ARTIFACT_KEY is not set"):
        load_pipeline("churn:1", session=session)
    monkeypatch.setenv("WORKBENCH_ARTIFACT_OLD_KEYS", f"{KEY_B},{KEY_A}")  # a reading key
    load_pipeline("churn:1", session=session)


@pytest.mark.parametrize("bad", ["not-a-key", "c2hvcnQ=", KEY_A[:-4]],
                         ids=["not-base64", "too-short", "cut-key"])  # KEY_A is random: fixed ids
def test_a_malformed_key_says_how_to_make_one(home, bad: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", bad)
    with pytest.raises(SettingsError, match="WORKBENCH_ARTIFACT_KEY .*workbench keygen"):
        sealing.write_key()


def test_tampered_ciphertext_is_refused(session: Session,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", KEY_A)
    mv = register_numeric(session)
    path = get_settings().home / mv.artifact_path
    stored = bytearray(path.read_bytes())
    stored[len(stored) // 2] ^= 0x01
    path.write_bytes(bytes(stored))
    with pytest.raises(ArtifactIntegrityError, match="fails its fingerprint check"):
        load_pipeline("churn:1", session=session)
    # ... and if the row's stored fingerprint were changed to match, the key's own
    # authentication refuses the bytes: never a pipeline built from altered bytes
    mv.stored_fingerprint = sha256_bytes(bytes(stored))
    session.add(mv)
    session.commit()
    with pytest.raises(ArtifactIntegrityError, match="fails its authentication check"):
        load_pipeline("churn:1", session=session)
    with pytest.raises(ArtifactIntegrityError, match="authentication"):  # a flipped tag bit
        header_changed = sealing.seal(b"data", parse_key(KEY_A, "k"))
        sealing.unseal(header_changed[:-1] + bytes([header_changed[-1] ^ 1]), "x")


def test_a_mixed_store_reads_plaintext_and_sealed_artifacts(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    old = register_numeric(session, seed=0)  # before any key was set
    ds = ingest_bytes(visits().to_csv(index=False).encode(), "visits.csv",
                      session=session).dataset
    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", KEY_A)
    new = register_numeric(session, seed=1)
    assert not _stored(old).startswith(MAGIC) and _stored(new).startswith(MAGIC)
    for version, seed in ((1, 0), (2, 1)):
        pipe, X = numeric_pipeline(seed)
        _, _, loaded = load_pipeline(f"churn:{version}", session=session)
        assert (loaded.predict(X) == pipe.predict(X)).all()
    assert load_frame(ds).shape == visits().shape
