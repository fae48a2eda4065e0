"""Retraining around imported versions and alerts that act: a retrain finds the data of the
newest version that has any, an alert queues one job per model however many fire (also when
monitors race), only on data no version was trained on, fed-back served rows included."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select
from typer.testing import CliRunner

from app.cli import app
from app.cli_common import session as cli_session
from core.data.datasets import get_dataset, ingest_path, load_frame
from core.deploy import deploy
from core.deploy.enums import AlertKind
from core.jobs import ledger
from core.jobs.states import JobState, Trigger
from core.monitor import alerts
from core.monitor.alerts import Observation
from core.registry import resolve
from core.store import Database, Job
from core.usecases.alert_actions import act
from tests.factories import WINE, import_wine, store_session

runner = CliRunner()


@pytest.fixture
def imported(session: Session, tmp_path: Path) -> int:
    """wine:1 trained here (dataset, target, settings); wine:2 imported and in production."""
    result = runner.invoke(app, ["train", str(WINE), "--target", "cultivar",
                                 "--estimator", "linear"])
    assert result.exit_code == 0, result.output
    version = import_wine(session, tmp_path)
    deploy("wine", version, 100, session=session)
    return version


def retrain_jobs(session: Session) -> list[Job]:
    return list(session.exec(select(Job).where(Job.trigger == Trigger.ALERT)
                             .order_by(Job.id).execution_options(populate_existing=True)).all())


def drift(version: int, features: list[str]) -> list:
    """DRIFT verdicts that open alerts (consecutive=1), and what those alerts do (on a
    session of their own on the CLI's store, shared by the threads of racing monitors: a
    Database each would migrate at once in every thread)."""
    with cli_session() as s:
        opened = [alerts.observe(Observation("wine", version, AlertKind.DRIFT, True,
                                             f"{f} drifted", 0.9, 0.1, feature=f), session=s)
                  for f in features]
        for alert in opened:
            act(alert, session=s)
    return opened


def set_config(model: str, **fields) -> None:
    with store_session() as s:
        alerts.set_config(model, session=s, **fields)


def list_alerts(model: str) -> list:
    with store_session() as s:
        return alerts.list_alerts(model, session=s)


def newer_upload(session: Session, tmp_path: Path, rows: int = 150) -> int:
    """Newer labelled data of the same kind (the same columns, other rows)."""
    path = tmp_path / "wine_new.csv"
    pd.read_csv(WINE).sample(rows, random_state=1).to_csv(path, index=False)
    return ingest_path(path, session=session).dataset.id


def test_retrain_after_an_import_uses_the_newest_version_with_data(
        imported: int, db: Database, session: Session) -> None:
    from core.jobs.schedules import create_schedule
    from core.usecases.retraining import fire_due, retrain

    _, trained = resolve("wine:1", session=session)
    assert resolve("wine@production", session=session)[1].version == imported
    job = retrain("wine", session=session)
    assert (job.dataset_id, job.target) == (trained.dataset_id, "cultivar")
    assert job.settings["estimators"] == ["linear"]  # the trained version's settings
    result = runner.invoke(app, ["retrain", "wine", "--json"])
    assert result.exit_code == 0, result.output
    sched = create_schedule("wine", "02:00", session=session)
    (fired,) = fire_due(db, now=sched.next_run_at)
    assert ledger.get_job(fired, session=session).dataset_id == trained.dataset_id


def test_drift_alerts_without_newer_data_queue_nothing_and_say_so(imported: int,
                                                                  session: Session) -> None:
    set_config("wine", retrain_on_alert=True, consecutive=1)
    opened = drift(imported, ["alcohol", "hue", "proline"])
    assert all(a is not None for a in opened)
    assert retrain_jobs(session) == []
    for alert in list_alerts("wine"):
        assert (f"no data newer than version {imported}; upload labelled data or send "
                "feedback to retrain") in alert.action


def test_many_drift_alerts_queue_one_retrain_on_the_newer_data(imported: int, tmp_path: Path,
                                                               session: Session) -> None:
    set_config("wine", retrain_on_alert=True, consecutive=1)
    new_id = newer_upload(session, tmp_path)
    drift(imported, ["alcohol", "hue", "proline", "magnesium"])
    (job,) = retrain_jobs(session)
    assert (job.dataset_id, job.target, job.state) == (new_id, "cultivar", "PENDING")
    actions = sorted(a.action for a in list_alerts("wine"))
    assert sum(f"retrain job {job.id} queued" in a for a in actions) == 1
    assert sum(f"job {job.id} (PENDING) of wine already covers" in a for a in actions) == 3
    # once that data has been trained on, the same data is not new any more
    ledger.transition(job.id, JobState.RUNNING, session=session)
    ledger.transition(job.id, JobState.COMPLETED, session=session)
    drift(imported, ["ash"])
    assert len(retrain_jobs(session)) == 1
    assert "no data newer" in list_alerts("wine")[0].action


def test_fed_back_served_rows_join_the_retrain_data(imported: int, session: Session) -> None:
    from app.api import create_app

    set_config("wine", retrain_on_alert=True, consecutive=1)
    frame = pd.read_csv(WINE)
    served = frame.sample(12, random_state=3)
    with TestClient(create_app(background=False)) as client:
        records = served.drop(columns=["cultivar"]).to_dict("records")
        r = client.post("/v1/models/wine/predict", json={"records": records})
        assert r.status_code == 200, r.text
        unlabelled = client.post("/v1/models/wine/predict", json={"records": records[:3]})
        assert unlabelled.status_code == 200
        fb = client.post("/v1/models/wine/feedback", json={
            "request_id": r.json()["request_id"], "actual": served["cultivar"].tolist()})
        assert fb.status_code == 200, fb.text
    drift(imported, ["alcohol"])
    (job,) = retrain_jobs(session)
    trained = load_frame(get_dataset(job.dataset_id, session=session))
    assert len(trained) == len(frame) + 12  # the version's data plus the labelled rows only
    tail = trained.tail(12).reset_index(drop=True)
    pd.testing.assert_frame_equal(tail, served.reset_index(drop=True), check_dtype=False)
    assert "with 12 fed-back rows" in list_alerts("wine")[0].action


def test_request_rows_are_logged_unless_switched_off(session: Session,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    from core.deploy.service import Serving
    from core.store import RequestInput
    from core.store.db import Database
    from tests.factories import record, register

    register("churn")
    with store_session() as s:
        deploy("churn", 1, 100, session=s)
    for switch, expect in (("true", [[record(1)]]), ("false", [])):
        monkeypatch.setenv("WORKBENCH_LOG_INPUTS", switch)
        serving = Serving(Database())
        # its own thread: a browser test's session-wide event loop may own this one
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(asyncio.run, serving.predict("churn", [record(1)])).result()
        serving.stop()  # flushes
        rows = session.exec(select(RequestInput.rows).where(
            RequestInput.request_id == answer.request_id)).all()
        assert [list(r) for r in rows] == expect


@pytest.mark.slow
def test_racing_monitors_queue_one_retrain(backend_db: Database, tmp_path: Path) -> None:
    """Monitors in several processes open alerts for one model at the same moment."""
    result = runner.invoke(app, ["train", str(WINE), "--target", "cultivar",
                                 "--estimator", "linear"])
    assert result.exit_code == 0, result.output
    with backend_db.session() as s:
        deploy("wine", 1, 100, session=s)
    set_config("wine", retrain_on_alert=True, consecutive=1)
    with backend_db.session() as s:
        newer_upload(s, tmp_path)
    threads_n, rounds = 4, 30
    for round_ in range(rounds):
        barrier = threading.Barrier(threads_n)
        errors: list[BaseException] = []

        def monitor(i: int, round_: int = round_, barrier: threading.Barrier = barrier,
                    errors: list[BaseException] = errors) -> None:
            try:
                barrier.wait()
                drift(1, [f"r{round_}-f{i}"])
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=monitor, args=(i,)) for i in range(threads_n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        with backend_db.session() as s:
            pending = [j for j in retrain_jobs(s) if j.state == JobState.PENDING]
            assert len(pending) == 1, f"round {round_}: {len(pending)} retrain jobs queued"
            ledger.transition(pending[0].id, JobState.CANCELLED, "test: next round", session=s)
    with backend_db.session() as s:
        assert len(retrain_jobs(s)) == rounds


@pytest.mark.slow
def test_queueing_once_per_model_holds_under_a_race(backend_db: Database) -> None:
    """The check-then-insert of `create_job_once` is one locked transaction."""
    from tests.factories import register

    register("churn")  # the model row exists: it is what the racers lock
    for round_ in range(30):
        barrier = threading.Barrier(4)
        created: list[bool] = []

        def queue(barrier: threading.Barrier = barrier, created: list[bool] = created) -> None:
            barrier.wait()
            with backend_db.session() as s:
                _, new = ledger.create_job_once(session=s, model_name="churn", target="y",
                                                task="binary", metric="roc_auc",
                                                trigger=Trigger.ALERT)
            created.append(new)

        threads = [threading.Thread(target=queue) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(created) == [False, False, False, True], f"round {round_}"
        with backend_db.session() as s:
            (job,) = [j for j in retrain_jobs(s) if j.state == JobState.PENDING]
            ledger.transition(job.id, JobState.CANCELLED, "test: next round", session=s)


def test_logged_request_rows_are_dropped_after_the_retention(session: Session,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """Request rows may be personal data: they are kept WORKBENCH_INPUT_RETENTION_DAYS."""
    from datetime import timedelta

    from core.monitor.live import compact
    from core.store import RequestInput, utcnow

    monkeypatch.setenv("WORKBENCH_INPUT_RETENTION_DAYS", "30")
    session.add(RequestInput(request_id="old", model_name="churn", rows=[{"a": 1}],
                             created_at=utcnow() - timedelta(days=31)))
    session.add(RequestInput(request_id="new", model_name="churn", rows=[{"a": 2}],
                             created_at=utcnow() - timedelta(days=29)))
    session.commit()
    compact(session=session)
    assert session.exec(select(RequestInput.request_id)).all() == ["new"]
