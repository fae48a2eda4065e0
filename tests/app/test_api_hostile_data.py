"""Hostile but honest uploads through POST /v1/datasets and POST /v1/jobs: every answer is
2xx or a 4xx JSON error, and no refused upload leaves a dataset file behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from core.data.datasets import list_datasets
from core.settings import get_settings
from tests.factories import store_session


@pytest.fixture
def client(backend: str) -> Iterator[TestClient]:
    """On SQLite and on PostgreSQL."""
    with TestClient(create_app(background=False)) as c:
        yield c


def _mixed_tz_csv(n: int = 40) -> bytes:
    offsets = ["+01:00", "-05:00", "Z", "+05:30", ""]
    rows = [f"2024-01-{1 + i % 28:02d}T10:00:00{offsets[i % 5]},{i},{'yes' if i % 3 else 'no'}"
            for i in range(n)]
    return ("when,amount,churn\n" + "\n".join(rows) + "\n").encode()


def _dataset_files() -> list[str]:
    root = get_settings().artifact_dir / "datasets"
    return sorted(p.stem for p in root.glob("*")) if root.exists() else []


def test_a_date_column_mixing_time_zones_is_stored_as_dates(client: TestClient) -> None:
    r = client.post("/v1/datasets?name=events", content=_mixed_tz_csv(),
                    headers={"content-type": "text/csv"})
    assert r.status_code == 201, r.text
    with store_session() as s:
        ds = list_datasets(session=s)[0]
    assert {c["name"]: c["kind"] for c in ds.columns}["when"] == "datetime"
    assert _dataset_files() == [ds.fingerprint]
    job = client.post("/v1/jobs", json={"dataset": ds.id, "target": "churn", "budget": 5})
    assert job.status_code == 201, job.text


@pytest.mark.parametrize("raw", [
    b"a,b\n1,2\n3,4\n",                                 # fine
    _mixed_tz_csv(),                                    # fine since the fix
    b"zip;price\n02134;17,99\n10001;3,5\n",             # fine: codes and decimal commas
    b"a,a\n1,2\n",                                      # duplicate header
    b"a,,c\n1,2,3\n",                                   # blank column name
    b"x\n1\ninf\n",                                     # infinity
    b"\x00\x01\x02garbage\xff\xfe",                     # not text
    b"PAR1not really parquet",                          # corrupt Parquet
    b"when\n2024-01-01T10:00+01:00\nnot a date\n2024-01-03Z\n",
], ids=["plain", "mixed-tz", "zip-decimal", "dup-header", "blank-name", "inf", "binary",
        "bad-parquet", "dates-and-text"])
def test_every_upload_gets_2xx_or_a_4xx_json_error_and_no_orphan_file(
        client: TestClient, raw: bytes) -> None:
    r = client.post("/v1/datasets", content=raw, headers={"content-type": "text/csv"})
    assert r.status_code < 300 or 400 <= r.status_code < 500, r.text
    if r.status_code >= 400:
        assert set(r.json()) == {"error", "detail"}
    with store_session() as s:
        assert _dataset_files() == sorted(d.fingerprint for d in list_datasets(session=s))


def test_decimal_mark_can_be_chosen_and_detection_is_reported(client: TestClient) -> None:
    raw = b"id;price\nA;1,5\nB;2,5\n"
    detected = client.post("/v1/datasets", content=raw,
                           headers={"content-type": "text/csv"}).json()
    assert any("decimal mark" in w for w in detected["warnings"])
    kept = client.post("/v1/datasets?decimal=.&name=as-text", content=b"id;price\nA;1,5\nC;2\n",
                       headers={"content-type": "text/csv"})
    assert kept.status_code == 201, kept.text
    assert client.post("/v1/datasets?decimal=x", content=raw,
                       headers={"content-type": "text/csv"}).status_code == 422


def test_training_on_five_rows_is_refused_with_the_number(client: TestClient) -> None:
    up = client.post("/v1/datasets", content=b"a,y\n1,0\n2,1\n3,0\n4,1\n5,0\n",
                     headers={"content-type": "text/csv"})
    assert up.status_code == 201, up.text
    r = client.post("/v1/jobs", json={"dataset": up.json()["id"], "target": "y", "budget": 5})
    assert r.status_code == 422, r.text
    assert "5 rows" in r.json()["detail"] and "at least 30" in r.json()["detail"]
    assert client.get("/v1/jobs").json() == []
