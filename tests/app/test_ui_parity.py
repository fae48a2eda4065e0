"""The Train page's search controls (issue 15, item 5): a number of trials and an expander per
chosen estimator whose ranges become the job's `search_space`, honoured by the search; a bad
combination shows the request's message, never a traceback, and queues nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest

from core.jobs import ledger
from core.jobs.states import JobState
from core.store import Database
from tests.factories import ROOT, WINE, store_session


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)


def _ingest_wine() -> int:
    from core.data.datasets import ingest_path

    with store_session() as s:
        return ingest_path(WINE, session=s).dataset.id


def _train_page(dataset_id: int) -> AppTest:
    at = _app().run()
    at.switch_page("pages/train.py").run()
    at.selectbox[0].set_value(dataset_id).run()
    return at


def test_an_expander_per_chosen_estimator_lists_its_parameters(home: Path) -> None:
    at = _train_page(_ingest_wine())
    assert not [e for e in at.expander if "Search space" in e.label]
    at.multiselect(key="train_estimators").set_value(["knn", "rf"]).run()
    assert not at.exception
    labels = [e.label for e in at.expander if "Search space" in e.label]
    assert labels == ["Search space of k-nearest neighbours", "Search space of Random forest"]
    assert at.number_input(key="train_space_knn_n_neighbors_low").value == 3
    assert at.number_input(key="train_space_knn_n_neighbors_high").value == 100
    assert at.multiselect(key="train_space_rf_criterion").options  # an optional parameter


@pytest.mark.slow  # a real (3-trial) search in a worker thread
def test_trials_and_overrides_set_on_train_are_stored_and_honoured(
        home: Path, db: Database, session: Session) -> None:
    from core.usecases.worker import job_worker

    wine_id = _ingest_wine()
    worker = job_worker(db)  # a live worker, so the page does not spawn a process
    thread = threading.Thread(target=worker.run, kwargs={"max_jobs": 1}, daemon=True)
    thread.start()
    at = _train_page(wine_id)
    at.multiselect(key="train_estimators").set_value(["knn"]).run()
    at.selectbox(key="train_target").set_value("cultivar")
    at.number_input(key="train_trials").set_value(3)
    at.number_input(key="train_space_knn_n_neighbors_low").set_value(5)
    at.number_input(key="train_space_knn_n_neighbors_high").set_value(7)
    at.multiselect(key="train_space_knn_weights").set_value(["uniform"])
    at.toggle(key="train_ensemble").set_value(False)
    at.button(key="FormSubmitter:train-Start training").click().run()
    assert not at.exception
    (job,) = ledger.list_jobs(session=session)
    assert job.settings["n_trials"] == 3
    assert job.settings["search_space"] == {"knn": {"n_neighbors": {"low": 5, "high": 7},
                                                    "weights": "uniform"}}
    thread.join(timeout=120)
    with store_session() as s:
        done = ledger.get_job(job.id, session=s)
        assert done.state == JobState.COMPLETED, done.error
        trials = ledger.trials_of(job.id, session=s)
    assert len(trials) == 3
    assert all(5 <= t.params["n_neighbors"] <= 7 and t.params["weights"] == "uniform"
               for t in trials)


def test_a_bad_override_is_explained_and_queues_nothing(home: Path, session: Session) -> None:
    """criterion gini fits classifiers only: predicting an amount, the request says so."""
    at = _train_page(_ingest_wine())
    at.multiselect(key="train_estimators").set_value(["rf"]).run()
    at.selectbox(key="train_target").set_value("alcohol")  # form values: set, then submit
    at.multiselect(key="train_space_rf_criterion").set_value(["gini"])
    at.button(key="FormSubmitter:train-Start training").click().run()
    assert not at.exception
    assert any("rf.criterion" in e.value and "squared_error" in e.value for e in at.error)
    assert ledger.list_jobs(session=session) == []


def test_progress_follows_the_number_of_trials(home: Path, session: Session) -> None:
    """A 4-trial search with an hour's cap, 2 trials done: half way, not 0 % of the hour."""
    from core.jobs.states import JobState as State

    wine_id = _ingest_wine()
    job = ledger.create_job(session=session, model_name="wine", target="cultivar",
                            task="multiclass", metric="log_loss", dataset_id=wine_id,
                            settings={"budget": 3600.0, "n_trials": 4}, state=State.PENDING)
    ledger.update_progress(job.id, session=session, trials_done=2)
    at = _app()
    at.query_params["job"] = str(job.id)
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    (bar,) = at.get("progress")
    assert bar.proto.value == 50
