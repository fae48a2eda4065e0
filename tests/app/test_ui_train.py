"""AppTest for the Data → Train → Leaderboard → Deploy journey (issue 14, defects 8 and 11):
dates are warned about and left out by default, the target and the Train form survive page and
dataset changes, cancelled searches keep their trials, completed jobs read 100 %, deletions ask
first, and each finished job links on."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from app.cli import app
from core.jobs import ledger
from core.jobs.states import JobState
from core.store import Database, Job
from tests.factories import DATA, ROOT, built_home, copy_home, store_session, visits


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)


def _texts(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("info", "markdown", "caption", "success", "error",
                                              "warning")
                    for e in getattr(at, kind))


def _page_links(at: AppTest) -> list[tuple[str, str]]:
    return [(link.proto.page, link.proto.label) for link in at.get("page_link")]


@pytest.fixture(scope="module")
def wine_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One search of wine (version 1, job 1) plus a stored visits table with a date."""
    with built_home(tmp_path_factory, "wine_train") as path:
        result = CliRunner().invoke(app, ["automl", str(DATA / "wine.csv"), "--target",
                                          "cultivar", "--budget", "3"])
        assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def wine(home: Path, wine_home: Path) -> Path:
    return copy_home(wine_home, home)


def _ingest(frame, name: str) -> int:
    from core.data.datasets import ingest_bytes

    with store_session() as s:
        return ingest_bytes(frame.to_csv(index=False).encode(), f"{name}.csv",
                            session=s).dataset.id


def _dataset_ids() -> dict[str, int]:
    from core.data.datasets import list_datasets

    with store_session() as s:
        return {d.name: d.id for d in list_datasets(session=s)}


# -- defect 8: dates ------------------------------------------------------------------------
def test_data_and_train_warn_about_a_date_and_leave_it_out_by_default(wine: Path) -> None:
    visits_id = _ingest(visits(), "visits")
    at = _app().run()
    at.switch_page("pages/data.py").run()
    at.selectbox[1].set_value(visits_id).run()  # [0] is the sample picker
    assert not at.exception
    warning = next(w.value for w in at.warning if "visit_date" in w.value)
    assert "holds dates" in warning and "time column" in warning
    choice = at.radio(key=f"data_dates_{visits_id}")
    assert choice.value == "leave_out"
    choice.set_value("time_order").run()  # carried to the Train page
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert any("visit_date" in w.value for w in at.warning)
    assert at.radio(key="train_dates").value == "time_order"
    assert at.selectbox(key="train_target").value == "returned"


@pytest.mark.slow  # a real search in a worker thread
def test_a_search_started_on_train_leaves_the_date_out(home: Path, db: Database,
                                                        session: Session) -> None:
    from core.registry import version_by_id
    from core.usecases.worker import job_worker

    visits_id = _ingest(visits(), "visits")
    worker = job_worker(db)  # a live worker, so the page does not spawn a process
    thread = threading.Thread(target=worker.run, kwargs={"max_jobs": 1}, daemon=True)
    thread.start()
    at = _app().run()
    at.switch_page("pages/train.py").run()
    at.selectbox[0].set_value(visits_id).run()
    assert at.radio(key="train_dates").value == "leave_out"
    at.slider(key="train_budget").set_value(10)
    at.multiselect(key="train_estimators").set_value(["linear"])
    at.button(key="FormSubmitter:train-Start training").click().run()
    assert not at.exception
    (job,) = ledger.list_jobs(session=session)
    assert job.settings["exclude"] == ["visit_date"] and job.settings["time_column"] is None
    thread.join(timeout=120)
    with store_session() as s:
        done = ledger.get_job(job.id, session=s)
        assert done.state == JobState.COMPLETED, done.error
        mv = version_by_id(done.version_id, session=s)
    assert [c["name"] for c in mv.input_schema] == ["x"]
    assert "visit_date" not in mv.evaluation.get("feature_importance", {})


# -- defect 11: smaller ---------------------------------------------------------------------
def test_the_target_chosen_on_data_is_the_one_train_starts_from(wine: Path) -> None:
    at = _app().run()
    at.switch_page("pages/data.py").run()
    at.selectbox(key="data_target").set_value("alcohol").run()
    assert not at.exception
    links = _page_links(at)
    assert any("train" in page and "alcohol" in label for page, label in links), links
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.selectbox(key="train_target").value == "alcohol"


def test_the_train_form_keeps_its_choices_when_the_dataset_changes(wine: Path,
                                                                   session: Session) -> None:
    import pandas as pd

    wine_frame = pd.read_csv(DATA / "wine.csv")
    wine_frame["batch"] = range(len(wine_frame))  # the same columns and one more
    other = _ingest(wine_frame, "wine_batches")
    wine_id = _dataset_ids()["wine"]
    at = _app().run()
    at.switch_page("pages/train.py").run()
    at.selectbox[0].set_value(wine_id).run()
    at.selectbox(key="train_target").set_value("alcohol")
    at.slider(key="train_budget").set_value(120)
    at.selectbox(key="train_method").set_value("random")
    at.multiselect(key="train_estimators").set_value(["linear"])
    at.selectbox(key="train_time").set_value("magnesium")
    at.text_input(key="train_name").set_value("my wine")
    at.button(key="FormSubmitter:train-Start training").click().run()  # the choices made
    assert not at.exception
    assert "not a valid model name" in at.error[0].value  # so no job is queued
    at.selectbox[0].set_value(other).run()
    assert not at.exception
    assert at.selectbox(key="train_target").value == "alcohol"
    assert at.slider(key="train_budget").value == 120
    assert at.selectbox(key="train_method").value == "random"
    assert at.multiselect(key="train_estimators").value == ["linear"]
    assert at.selectbox(key="train_time").value == "magnesium"
    assert at.text_input(key="train_name").value == "my wine"  # typed: kept
    at.selectbox(key="train_target").set_value("batch")  # a column wine lacks
    at.text_input(key="train_name").set_value("wine_batches")  # the default name again
    at.selectbox(key="train_metric").set_value("roc_auc")  # refused for amounts: no job
    at.button(key="FormSubmitter:train-Start training").click().run()
    assert at.error and len(ledger.list_jobs(session=session)) == 1  # wine's own search
    at.selectbox[0].set_value(wine_id).run()
    assert at.selectbox(key="train_target").value == "alcohol"  # chosen for wine before
    assert at.text_input(key="train_name").value == "wine"  # follows the dataset


def _cancelled_search(session: Session) -> int:
    """A second wine search cancelled after two finished trials (and one cut short)."""
    first = ledger.list_jobs(session=session)[-1]
    job = ledger.create_job(session=session, model_name="wine", target="cultivar",
                            task=first.task, metric=first.metric, dataset_id=first.dataset_id,
                            state=JobState.RUNNING)
    for n, (status, score) in enumerate([("ok", -0.2), ("ok", -0.1), ("pruned", None)]):
        ledger.add_trial(job.id, session=session, number=n, estimator="linear",
                         params={"C": n + 1.0}, metric=first.metric, cv_mean=score,
                         cv_std=0.01 if score else None, status=status,
                         reason="cancelled" if status == "pruned" else None)
    ledger.update_progress(job.id, session=session, trials_done=3, metric=first.metric,
                           best_score=-0.1)
    ledger.transition(job.id, JobState.CANCELLED, "cancelled by request after 3 trials",
                      session=session)
    return job.id


def test_a_cancelled_search_keeps_its_trials_on_the_leaderboard(wine: Path,
                                                                session: Session) -> None:
    job_id = _cancelled_search(session)
    at = _app().run()
    at.switch_page("pages/leaderboard.py").run()
    search = next(s for s in at.selectbox if s.label == "Search")
    assert any(f"job {job_id}:" in o and "cancelled" in o for o in search.options)
    search.set_value(job_id).run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 3
    assert any("cancelled" in i.value for i in at.info)

    at.query_params["job"] = str(job_id)  # the Train page's view of it
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert "cancelled after 3 trials" in _texts(at)
    assert any("leaderboard" in page for page, _ in _page_links(at))


def test_a_completed_job_reads_100_percent(wine: Path, session: Session) -> None:
    (job,) = ledger.list_jobs(session=session)
    row = session.get(Job, job.id)
    row.settings = {**row.settings, "budget": 60.0}  # finished long before its budget
    row.finished_at = row.started_at + timedelta(seconds=6)
    session.add(row)
    session.commit()
    at = _app()
    at.query_params["job"] = str(job.id)
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.progress[0].value in (1.0, 100)


def test_finished_jobs_link_to_leaderboard_version_and_deployments(wine: Path,
                                                                   session: Session) -> None:
    (job,) = ledger.list_jobs(session=session)
    at = _app().run()
    at.switch_page("pages/jobs.py").run()
    assert not at.exception
    pages = [page for page, _ in _page_links(at)]
    for wanted in ("leaderboard", "version", "deployments"):
        assert any(wanted in p for p in pages), pages
    at = _app()
    at.query_params["job"] = str(job.id)
    at.run()
    at.switch_page("pages/train.py").run()
    pages = [page for page, _ in _page_links(at)]
    for wanted in ("leaderboard", "version", "deployments"):
        assert any(wanted in p for p in pages), pages


def test_deleting_a_schedule_asks_first_and_cancel_keeps_it(wine: Path,
                                                            session: Session) -> None:
    from core.jobs.schedules import create_schedule, list_schedules

    create_schedule("wine", "03:30", session=session, actor="test")
    at = _app().run()
    at.switch_page("pages/jobs.py").run()
    next(b for b in at.button if b.label == "Delete schedule").click().run()
    assert not at.exception
    assert len(list_schedules(session=session)) == 1  # nothing deleted before the confirm
    assert any("It will not run again" in w.value for w in at.warning)
    at.button(key="schedule_delete_cancel").click().run()
    assert len(list_schedules(session=session)) == 1
    assert not any("It will not run again" in w.value for w in at.warning)
    next(b for b in at.button if b.label == "Delete schedule").click().run()
    at.button(key="schedule_delete_confirm").click().run()
    assert not at.exception
    assert list_schedules(session=session) == []


def test_a_dataset_is_deleted_after_a_confirmation_and_a_used_one_is_kept(wine: Path) -> None:
    spare = _ingest(visits(), "visits")
    at = _app().run()
    at.switch_page("pages/data.py").run()
    at.selectbox[1].set_value(spare).run()
    at.button(key="dataset_delete").click().run()
    assert spare in _dataset_ids().values()  # only asked so far
    at.button(key="dataset_delete_cancel").click().run()
    assert spare in _dataset_ids().values()
    at.button(key="dataset_delete").click().run()
    at.button(key="dataset_delete_confirm").click().run()
    assert not at.exception
    assert spare not in _dataset_ids().values()
    assert any(f"Deleted dataset {spare}" in s.value for s in at.success)

    at.selectbox[1].set_value(_dataset_ids()["wine"]).run()  # wine:1 was trained on it
    assert not at.exception
    assert "dataset_delete" not in [b.key for b in at.button]
    assert "lineage" in _texts(at)


@pytest.mark.slow  # the demo seeds two real searches
def test_demo_mode_shows_its_preparation_as_steps(home: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import streamlit as st

    monkeypatch.setenv("WORKBENCH_DEMO", "true")
    st.cache_resource.clear()
    try:
        at = _app().run(timeout=180)
        assert not at.exception
        (status,) = at.status
        assert status.label.startswith("The demo is ready") and status.state == "complete"
        steps = " ".join(m.value for m in at.markdown)
        assert "Training version 1 of breast_cancer" in steps
        assert "Replaying 500 requests" in steps
        again = _app().run(timeout=60)  # seeded once: no second preparation
        assert not again.exception and not again.status
    finally:
        st.cache_resource.clear()
