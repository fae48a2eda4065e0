"""The artifact store on a real S3-compatible server (moto's standalone server, started by the
suite): models, datasets and run artifacts round-trip, every load is verified, reads go
through the bounded local cache, and an upload cut mid-way leaves no half-written version."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import Session, func, select

from core.data.datasets import ingest_bytes, load_frame
from core.errors import ArtifactIntegrityError, StorageUnavailableError
from core.registry import load_pipeline
from core.settings import get_settings
from core.store import Dataset, ModelVersion, readcache
from core.store import artifacts as store
from tests import s3server
from tests.factories import numeric_pipeline, register_numeric, store_session, visits
from tests.s3server import S3, CutProxy

moto_endpoint, s3, cut_proxy = s3server.moto_endpoint, s3server.s3, s3server.cut_proxy  # fixtures

PREFIX = "team/artifacts/"


def _versions(s: Session) -> int:
    return s.exec(select(func.count()).select_from(ModelVersion)).one()


def test_a_version_is_stored_in_the_bucket_and_loads_verified(s3: S3, session: Session) -> None:
    mv = register_numeric(session)
    assert s3.keys() == [PREFIX + store.key_of(mv.artifact_path)]
    assert not (get_settings().home / "artifacts").exists()  # nothing on the local disk
    pipe, X = numeric_pipeline()
    _, _, loaded = load_pipeline("churn:1", session=session)
    assert (loaded.predict_proba(X) == pipe.predict_proba(X)).all()


def test_datasets_and_run_artifacts_live_in_the_bucket(s3: S3, session: Session) -> None:
    from core import tracking

    ds = ingest_bytes(visits().to_csv(index=False).encode(), "visits.csv",
                      session=session).dataset
    assert PREFIX + store.key_of(ds.path) in s3.keys()
    assert load_frame(ds).equals(load_frame(ds)) and load_frame(ds).shape == visits().shape
    with tracking.start_run(experiment="e") as run:
        run.log_artifact(b"hello", "notes/a.txt")
    with store_session() as s:
        assert [(a.path, a.size_bytes) for a in tracking.list_artifacts(run.run_id, session=s)] \
            == [("notes/a.txt", 5)]
        assert tracking.read_artifact(run.run_id, "notes/a.txt", session=s) == ("a.txt",
                                                                               b"hello")
        with pytest.raises(Exception, match="has no artifact"):
            tracking.read_artifact(run.run_id, "notes/../../x", session=s)


def test_a_training_run_links_its_model_by_a_server_side_copy(
        s3: S3, session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    from core import tracking
    from core.registry.artifacts import read_verified
    from core.store.sealing import new_key_text
    from core.tracking.artifacts import link_artifact

    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", new_key_text())
    mv = register_numeric(session)
    with tracking.start_run(experiment="e") as run:
        pass
    linked = link_artifact(run.run_id, "model.skops", mv.artifact_path)
    assert linked.size_bytes == mv.size_bytes  # the plaintext's size, not the envelope's
    assert PREFIX + f"runs/{run.run_id}/model.skops" in s3.keys()
    plain = read_verified(mv.artifact_path, mv.fingerprint, "churn:1",
                          stored_fingerprint=mv.stored_fingerprint)
    assert tracking.read_artifact(run.run_id, "model.skops", session=session)[1] == plain


def test_a_changed_object_is_refused_and_the_cache_is_checked_too(s3: S3,
                                                                   session: Session) -> None:
    mv = register_numeric(session)
    key = PREFIX + store.key_of(mv.artifact_path)
    load_pipeline("churn:1", session=session)
    cached = readcache.cache_dir() / mv.stored_fingerprint
    assert cached.is_file()  # the write-through / first read filled the local cache
    s3.put(key, s3.get(key)[:-10])  # truncated on the server
    load_pipeline("churn:1", session=session)  # the verified cached copy still serves
    cached.write_bytes(b"damaged")  # the cache entry is checked on every hit, too
    with pytest.raises(ArtifactIntegrityError, match="fails its fingerprint check"):
        load_pipeline("churn:1", session=session)
    assert not cached.exists()  # a damaged entry is dropped, never served
    s3.client.delete_object(Bucket=s3.bucket, Key=key)  # type: ignore[attr-defined]
    with pytest.raises(ArtifactIntegrityError, match=f"missing.*{s3.bucket}"):
        load_pipeline("churn:1", session=session)


def test_the_read_cache_stays_within_its_bound(s3: S3, session: Session,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    first = register_numeric(session, seed=0)
    size = first.size_bytes
    monkeypatch.setenv("WORKBENCH_ARTIFACT_CACHE_MB", str(2.5 * size / 1024 / 1024))
    for seed in (1, 2, 3):
        register_numeric(session, seed=seed)
    for version in (1, 2, 3, 4):
        load_pipeline(f"churn:{version}", session=session)
    assert 0 < readcache.size_bytes() <= 2.5 * size
    assert len(list(readcache.cache_dir().iterdir())) == 2
    monkeypatch.setenv("WORKBENCH_ARTIFACT_CACHE_MB", "0")  # off: still loads, from S3
    load_pipeline("churn:1", session=session)


def test_an_upload_cut_mid_way_registers_nothing(cut_proxy: CutProxy, s3: S3,
                                                 backend: str) -> None:
    pipe_size = 2000  # bytes of the PUT (headers and body) after which the connection dies
    cut_proxy.cut_uploads_after(pipe_size)
    with store_session() as s:
        with pytest.raises(StorageUnavailableError) as exc:
            register_numeric(s)
        assert s3.url in exc.value.message and "could not write" in exc.value.message
        assert _versions(s) == 0  # no version without its artifact
    assert cut_proxy.cuts >= 1
    assert s3.keys() == []  # and no half-written object
    with store_session() as s:
        with pytest.raises(StorageUnavailableError):
            ingest_bytes(visits().to_csv(index=False).encode(), "visits.csv", session=s)
        assert s.exec(select(func.count()).select_from(Dataset)).one() == 0
    assert s3.keys() == []
    cut_proxy.cut_uploads_after(None)  # the network is back: the same call succeeds
    with store_session() as s:
        assert register_numeric(s).version == 1
    assert len(s3.keys()) == 1


def test_the_api_answers_503_when_the_store_fails_an_upload(cut_proxy: CutProxy, s3: S3,
                                                            home: Path) -> None:
    from fastapi.testclient import TestClient

    from app.api.main import create_app

    cut_proxy.cut_uploads_after(1500)
    with TestClient(create_app()) as client:
        r = client.post("/v1/datasets?name=visits", content=visits().to_csv(index=False),
                        headers={"content-type": "text/csv"})
    assert r.status_code == 503, r.text
    assert r.json()["error"] == "storage_unavailable" and s3.bucket in r.json()["detail"]
    assert s3.keys() == []


def test_a_backup_with_artifacts_copies_the_bucket(s3: S3, session: Session,
                                                   tmp_path: Path) -> None:
    from core.store.backup import backup

    mv = register_numeric(session)
    ds = ingest_bytes(visits().to_csv(index=False).encode(), "visits.csv",
                      session=session).dataset
    result = backup(tmp_path / "copy", settings=get_settings(), with_artifacts=True)
    assert result.artifacts == 2 and result.notes == []  # every row's file, verified
    for rel in (mv.artifact_path, ds.path):
        assert (tmp_path / "copy" / rel).is_file()
