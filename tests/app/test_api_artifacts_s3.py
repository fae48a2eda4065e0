"""A registered model stored on S3 (moto's server) and encrypted, served through the API; the
same predictions after `rotate-key`, from a fresh server holding only the new key."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from core.deploy import deployments as dep
from core.store import artifacts as store
from core.store.rotation import rotate
from core.store.sealing import MAGIC, new_key_text, parse_key
from tests import s3server
from tests.factories import forget_stores, record, register, store_session
from tests.s3server import S3

moto_endpoint, s3 = s3server.moto_endpoint, s3server.s3  # fixtures


def _predict(client: TestClient) -> dict:
    r = client.post("/v1/models/churn/predict",
                    json={"records": [record(i, plan) for i, plan in
                                      enumerate(["basic", "plus", "pro"])]})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.slow  # two app start-ups around a rotation: ~5 s
def test_an_encrypted_model_on_s3_serves_and_survives_a_key_rotation(
        s3: S3, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old, new = new_key_text(), new_key_text()
    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", old)
    mv = register()
    (key,) = s3.keys()
    assert key.endswith(store.key_of(mv.artifact_path)) and s3.get(key).startswith(MAGIC)
    with store_session() as s:
        dep.deploy("churn", 1, session=s)
    with TestClient(create_app(background=False)) as client:
        before = _predict(client)
        assert before["version"] == 1
        listing = client.get("/v1/models/churn").json()
        assert listing["versions"][0]["fingerprint"] == mv.fingerprint

    with store_session() as s:
        report = rotate(parse_key(new, "new"), session=s)
    assert report.done and len(report.rotated) == 1
    (rotated,) = s3.keys()
    assert rotated != key and s3.get(rotated).startswith(MAGIC)

    forget_stores()  # a new server process, holding the new key only
    monkeypatch.setenv("WORKBENCH_ARTIFACT_KEY", new)
    with TestClient(create_app(background=False)) as client:
        after = _predict(client)
        assert client.get("/v1/models/churn").json()["versions"][0]["fingerprint"] == \
            mv.fingerprint
    assert (after["predictions"], after["probabilities"], after["version"]) == \
        (before["predictions"], before["probabilities"], before["version"])
