"""Issue 14: a date column is named and can be left out of the features or used to order the
validation (defect 8); a dataset can be deleted unless a version or job names it, with the
same refusal from the use case, the CLI and the API (defect 11)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from app.cli import app
from core.automl.dates import DateUse, date_warning, default_date_use, plan_dates
from core.automl.request import SETTINGS, TrainingRequest
from core.automl.train import prepare
from core.data.datasets import delete_dataset, ingest_bytes, list_datasets, store_frame
from core.data.profile import profile_frame
from core.errors import ConflictError, InvalidDataError, NotFoundError
from core.features.kinds import date_columns
from core.jobs import ledger
from core.settings import get_settings
from core.store import AuditEvent
from tests.factories import visits


def test_a_date_column_is_found_and_named_in_plain_words() -> None:
    profile = [p.to_dict() for p in profile_frame(visits())]
    assert date_columns(profile) == ["visit_date"]
    text = date_warning(["visit_date"])
    assert "'visit_date' holds dates" in text and "time column" in text
    assert date_warning([]) is None
    assert default_date_use(profile) == DateUse.LEAVE_OUT  # the safe default
    stocks = [*profile, {"name": "close", "kind": "numeric"}]
    assert default_date_use(stocks) == DateUse.TIME_ORDER  # market data: time order


def test_a_left_out_date_is_no_feature_and_time_order_still_uses_it() -> None:
    frame = visits()
    plain = prepare(frame, "returned")
    assert "visit_date" in [c["name"] for c in plain.schema]  # what happened before

    plan = plan_dates(DateUse.LEAVE_OUT, ["visit_date"])
    left_out = prepare(frame, "returned", time_column=plan.time_column, exclude=plan.exclude)
    assert [c["name"] for c in left_out.schema] == ["x"]
    assert left_out.dropped["visit_date"] == "left out on request"
    assert left_out.time_column is None

    plan = plan_dates(DateUse.TIME_ORDER, ["visit_date"])
    assert plan == plan_dates("time_order", ["visit_date"])
    ordered = prepare(frame, "returned", time_column=plan.time_column, exclude=plan.exclude)
    assert [c["name"] for c in ordered.schema] == ["x"]
    assert ordered.time_column == "visit_date"
    for train, test in ordered.splits:  # validated on later rows than it learned from
        assert ordered.time.iloc[train].max() < ordered.time.iloc[test].min()

    with pytest.raises(InvalidDataError, match="Cannot leave out 'nope'"):
        prepare(frame, "returned", exclude=("nope",))
    with pytest.raises(InvalidDataError, match="cannot be left out"):
        prepare(frame, "returned", exclude=("returned",))


def test_a_job_stores_left_out_columns_only_when_there_are_some() -> None:
    plain = TrainingRequest.create(dataset=1, target="y")
    assert list(plain.settings()) == list(SETTINGS)  # the same settings as ever
    leaving = TrainingRequest.create(dataset=1, target="y", exclude=["visit_date"])
    assert leaving.settings()["exclude"] == ["visit_date"]
    again = TrainingRequest.from_settings(leaving.settings(), dataset=2, target="y")
    assert again.exclude == ("visit_date",)  # a retrain leaves it out too


# -- deleting a dataset ---------------------------------------------------------------------
def _store(session: Session, frame: pd.DataFrame, name: str):
    raw = frame.to_csv(index=False).encode()
    return ingest_bytes(raw, f"{name}.csv", session=session).dataset


def test_an_unused_dataset_is_deleted_with_its_file_and_an_audit_row(session: Session) -> None:
    ds = _store(session, visits(), "visits")
    path = get_settings().home / ds.path
    assert path.is_file()
    gone = delete_dataset(ds.id, session=session, actor="test", reason="wrong file")
    assert gone.id == ds.id
    assert list_datasets(session=session) == []
    assert not path.exists()
    (event,) = session.exec(select(AuditEvent).where(AuditEvent.action == "dataset.delete"))
    assert event.entity == f"dataset:{ds.id}" and event.reason == "wrong file"
    with pytest.raises(NotFoundError):
        delete_dataset(ds.id, session=session)
    again = _store(session, visits(), "visits")  # the same content can be stored again
    assert (get_settings().home / again.path).is_file()


def test_a_dataset_a_job_trained_on_is_kept_with_the_reason(session: Session) -> None:
    ds = _store(session, visits(), "visits")
    job = ledger.create_job(session=session, model_name="visits", target="returned",
                            task="binary", metric="roc_auc", dataset_id=ds.id)
    with pytest.raises(ConflictError) as exc:
        delete_dataset(ds.id, session=session)
    assert f"job(s) {job.id}" in exc.value.message and "lineage" in exc.value.message
    assert [d.id for d in list_datasets(session=session)] == [ds.id]
    assert (get_settings().home / ds.path).is_file()


def test_cli_and_api_delete_a_dataset_and_refuse_a_used_one(home: Path) -> None:
    from app.api.main import create_app
    from tests.factories import store_session

    with store_session() as s:
        unused = _store(s, visits(), "visits").id
        used = _store(s, visits(40), "short").id
        ledger.create_job(session=s, model_name="short", target="returned", task="binary",
                          metric="roc_auc", dataset_id=used)
        spare = store_frame(visits(30), session=s, name="spare", fingerprint="f" * 64).dataset.id

    runner = CliRunner()
    listed = runner.invoke(app, ["datasets", "--json"])
    assert listed.exit_code == 0 and len(json.loads(listed.stdout)) == 3
    refused = runner.invoke(app, ["datasets", "delete", str(used), "--yes"])
    assert refused.exit_code == 2 and "lineage" in refused.stderr
    kept = runner.invoke(app, ["datasets", "delete", str(unused)], input="n\n")
    assert kept.exit_code == 1  # declined at the confirmation: nothing deleted
    done = runner.invoke(app, ["datasets", "delete", str(unused), "--yes", "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout) == {"deleted": unused, "name": "visits"}

    client = TestClient(create_app(background=False))
    answer = client.delete(f"/v1/datasets/{used}")
    assert answer.status_code == 409
    assert answer.json()["error"] == "conflict" and "lineage" in answer.json()["detail"]
    answer = client.delete("/v1/datasets/999")
    assert answer.status_code == 404 and set(answer.json()) == {"error", "detail"}
    answer = client.delete(f"/v1/datasets/{spare}")
    assert answer.status_code == 200 and answer.json() == {"deleted": spare, "name": "spare"}
    assert [d["id"] for d in client.get("/v1/datasets").json()] == [used]
