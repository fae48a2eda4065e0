"""The artifact store (core/store/artifacts.py) on a directory: unset URL = today's layout, a
local path elsewhere, atomic writes, fingerprints checked on every load."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session

from core.data.datasets import ingest_bytes, load_frame
from core.errors import ArtifactIntegrityError
from core.registry import load_pipeline
from core.settings import get_settings
from core.store import artifacts as store
from tests.factories import numeric_pipeline, register_numeric, visits


def test_without_a_url_artifacts_stay_under_workbench_home(session: Session) -> None:
    mv = register_numeric(session)
    assert mv.artifact_path.startswith("artifacts/models/churn/")
    assert (get_settings().home / mv.artifact_path).is_file()
    assert mv.stored_fingerprint == mv.fingerprint  # nothing encrypted: one fingerprint
    assert store.location() == str(get_settings().home / "artifacts")


def test_a_local_path_url_moves_the_files_and_keeps_the_rows(
        session: Session, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = tmp_path / "shared"
    monkeypatch.setenv("WORKBENCH_ARTIFACT_URL", str(shared))
    mv = register_numeric(session)
    ds = ingest_bytes(visits().to_csv(index=False).encode(), "visits.csv",
                      session=session).dataset
    assert (shared / store.key_of(mv.artifact_path)).is_file()
    assert (shared / store.key_of(ds.path)).is_file()
    assert not (get_settings().home / "artifacts").exists()
    pipe, X = numeric_pipeline()
    _, _, loaded = load_pipeline("churn:1", session=session)
    assert (loaded.predict(X) == pipe.predict(X)).all()
    assert load_frame(ds).shape == visits().shape


def test_a_write_leaves_no_temporary_file_and_replaces_whole(home: Path) -> None:
    written = store.write("runs/1/a.txt", b"first")
    store.write("runs/1/a.txt", b"second")
    folder = home / "artifacts" / "runs" / "1"
    assert sorted(p.name for p in folder.iterdir()) == ["a.txt"]
    assert store.read(written.relpath, "a.txt") == b"second"


def test_a_dataset_file_is_checked_against_its_stored_fingerprint(session: Session) -> None:
    ds = ingest_bytes(visits().to_csv(index=False).encode(), "visits.csv",
                      session=session).dataset
    assert ds.stored_fingerprint
    path = get_settings().home / ds.path
    data = path.read_bytes()
    path.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # one bit flipped
    with pytest.raises(ArtifactIntegrityError, match="fails its fingerprint check"):
        load_frame(ds)
    path.unlink()
    with pytest.raises(ArtifactIntegrityError, match="missing.*Upload the data again"):
        load_frame(ds)


def test_a_bad_url_or_options_is_a_clear_settings_error(
        home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.errors import SettingsError

    monkeypatch.setenv("WORKBENCH_ARTIFACT_URL", "nosuchfs://bucket/x")
    with pytest.raises(SettingsError, match="WORKBENCH_ARTIFACT_URL"):
        store.write("runs/1/a.txt", b"x")
    monkeypatch.setenv("WORKBENCH_ARTIFACT_URL", "memory://wb")
    monkeypatch.setenv("WORKBENCH_ARTIFACT_OPTIONS", "[1, 2]")
    with pytest.raises(SettingsError, match="WORKBENCH_ARTIFACT_OPTIONS must be a JSON object"):
        store.write("runs/1/a.txt", b"x")


def test_any_fsspec_filesystem_serves_as_the_store(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsspec's in-memory filesystem stands for gs://, abfs://, …: the same calls."""
    monkeypatch.setenv("WORKBENCH_ARTIFACT_URL", "memory://wb-test-store")
    mv = register_numeric(session)
    assert store.backend().remote
    assert store.exists(mv.artifact_path)
    assert not (get_settings().home / mv.artifact_path).exists()
    pipe, X = numeric_pipeline()
    assert (load_pipeline("churn", session=session)[2].predict(X) == pipe.predict(X)).all()
