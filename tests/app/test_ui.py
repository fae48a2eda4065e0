"""AppTest: every page renders with and without data and shows no exception; the key
actions work (upload, train in a background worker, alias moves, schedules).

Searches are run once per module: `wine_home` (one search of wine), `two_wines_home` (two)
and `demo_home` (the app's demo seeding) are built once, and each test gets its own copy of
one (the `wine`, `two_wines` and `demo` fixtures, named before `db`/`session`: the copy must
be in place before the store is opened), so what a test changes no other sees. Tests that need
a search of their own (another data set, a worker, a market) are `slow`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from app.cli import app
from core.deploy import get_state
from core.settings import reset_settings
from core.store import Database
from tests.factories import DATA, ROOT, built_home, copy_home, store_session


def _state(name: str):
    """A deployment's state, read as another process would."""
    with store_session() as s:
        return get_state(name, session=s)


PAGES = ["pages/home.py", "pages/data.py", "pages/train.py", "pages/leaderboard.py",
         "pages/registry.py", "pages/version.py", "pages/predict.py", "pages/deployments.py",
         "pages/monitor.py", "pages/jobs.py"]


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)


def _train_wine() -> None:
    result = CliRunner().invoke(app, ["automl", str(DATA / "wine.csv"), "--target", "cultivar",
                                      "--budget", "6"])  # room for importance
    assert result.exit_code == 0, result.output


# -- homes built once per module; each test works on a copy ---------------------------------
@pytest.fixture(scope="module")
def wine_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One search of wine: version 1, one completed job."""
    with built_home(tmp_path_factory, "wine") as path:
        _train_wine()
    return path


@pytest.fixture(scope="module")
def two_wines_home(tmp_path_factory: pytest.TempPathFactory, wine_home: Path) -> Path:
    """Two searches of wine: versions 1 and 2, two completed jobs."""
    with built_home(tmp_path_factory, "two_wines", start=wine_home) as path:
        _train_wine()
    return path


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[str]]]:
    """The app started in demo mode on an empty store (it seeds samples, two versions, a 10 %
    canary and traffic), with the exceptions that first run showed."""
    import streamlit as st

    with built_home(tmp_path_factory, "demo") as path, pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_DEMO", "true")
        reset_settings()
        st.cache_resource.clear()
        at = _app().run(timeout=180)
        errors = [str(e.value) for e in at.exception]
        st.cache_resource.clear()
    yield path, errors


@pytest.fixture
def wine(home: Path, wine_home: Path) -> Path:
    return copy_home(wine_home, home)


@pytest.fixture
def two_wines(home: Path, two_wines_home: Path) -> Path:
    return copy_home(two_wines_home, home)


@pytest.fixture
def demo(home: Path, demo_home: tuple[Path, list[str]],
         monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A copy of the demo store, opened in demo mode (already seeded: nothing is redone)."""
    import streamlit as st

    copy_home(demo_home[0], home)
    monkeypatch.setenv("WORKBENCH_DEMO", "true")
    st.cache_resource.clear()
    yield demo_home[1]
    st.cache_resource.clear()


@pytest.mark.parametrize("page_file", PAGES)
def test_pages_render_on_an_empty_store(page_file: str, home: Path) -> None:
    at = _app().run()
    at.switch_page(page_file).run()
    assert not at.exception
    assert at.info, "an empty store shows what to do next"


@pytest.mark.parametrize("page_file", PAGES)
def test_each_page_file_runs_on_its_own(page_file: str, wine: Path) -> None:
    at = AppTest.from_file(str(ROOT / page_file), default_timeout=60).run()
    assert not at.exception


def test_pages_show_models_and_data(wine: Path) -> None:
    at = _app().run()
    assert not at.exception
    assert at.dataframe[0].value["name"].tolist() == ["wine"]
    at.switch_page("pages/data.py").run()
    assert not at.exception
    assert any("multiclass" in m.value for m in at.markdown)
    at.switch_page("pages/leaderboard.py").run()
    assert not at.exception
    assert len(at.get("vega_lite_chart")) >= 4  # best-so-far, speed, confusion, importance
    assert "cultivar" not in at.dataframe[0].value["params"].str.cat()
    at.switch_page("pages/registry.py").run()
    assert not at.exception
    at.text_input[0].set_value("staging")
    at.button[0].click().run()
    assert not at.exception
    assert at.dataframe[0].value["aliases"].tolist() == ["staging"]
    assert at.dataframe[1].value["change"].tolist() == ["staging set to version 1"]  # history
    at.text_input[0].set_value("9 bad")
    at.button[0].click().run()
    assert "not a valid alias" in at.error[0].value


def test_bad_upload_shows_an_error_not_a_traceback(home: Path) -> None:
    at = _app().run()
    at.switch_page("pages/data.py").run()
    at.file_uploader[0].upload("broken.csv", b"a,a\n1,2\n", "text/csv").run()
    assert not at.exception
    assert "the column name 'a' appears twice" in at.error[0].value
    at.selectbox[0].set_value("wine.csv").run()
    at.button[0].click().run()
    assert not at.exception
    assert "Detected **multiclass**" in " ".join(m.value for m in at.markdown)


@pytest.mark.slow  # a real search in a worker thread
def test_train_page_runs_a_job_in_a_background_worker(db: Database, session: Session) -> None:
    from core.jobs.ledger import list_jobs
    from core.usecases.worker import job_worker

    CliRunner().invoke(app, ["seed"])
    worker = job_worker(db)  # a live worker, so the page does not spawn a process
    thread = threading.Thread(target=worker.run, kwargs={"max_jobs": 1}, daemon=True)
    thread.start()
    at = _app().run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    ds_box = at.selectbox[0]
    wine = next(o for o in ds_box.options if "wine" in o)
    ds_box.set_value(int(wine.split(":")[0])).run()
    at.slider[0].set_value(10)
    at.multiselect[0].set_value(["linear"])
    at.button[0].click().run()
    assert not at.exception
    (job,) = list_jobs(session=session)
    assert job.model_name == "wine" and job.settings["estimators"] == ["linear"]
    thread.join(timeout=90)
    at.run()
    assert not at.exception
    assert "registered version 1 of **wine**" in at.success[0].value


def test_jobs_page_adds_and_pauses_a_schedule(wine: Path, session: Session) -> None:
    at = _app().run()
    at.switch_page("pages/jobs.py").run()
    assert not at.exception
    at.text_input[0].set_value("03:30")
    at.button(key="FormSubmitter:schedule-Add schedule").click().run()
    assert not at.exception
    from core.jobs.schedules import list_schedules

    (sched,) = list_schedules(session=session)
    assert sched.cron == "30 3 * * *"
    at.run()
    next(b for b in at.button if b.label == "Pause schedule").click().run()
    assert not at.exception
    assert list_schedules(session=session)[0].paused


def test_deployments_page_canary_simulator_and_rollback(two_wines: Path) -> None:
    at = _app().run()
    at.switch_page("pages/deployments.py").run()
    assert not at.exception
    at.selectbox[1].set_value(1)
    at.button(key="FormSubmitter:deploy-Deploy").click().run()
    assert _state("wine").stable == 1
    at.selectbox[1].set_value(2)
    at.select_slider[0].set_value(10)
    at.button(key="FormSubmitter:deploy-Deploy").click().run()
    assert not at.exception
    state = _state("wine")
    assert (state.stable, state.candidate, state.percent) == (1, 2, 10.0)
    at.slider[0].set_value(1000)
    at.button(key="FormSubmitter:simulate-Run simulator").click().run()
    assert not at.exception
    result = at.session_state["simulation"]
    assert result["errors"] == 0 and 0.06 <= result["candidate_share"] <= 0.14
    live = next(d.value for d in at.dataframe if "role" in d.value.columns)
    assert {"ok", "failed", "rejected"} <= set(live.columns) and live["ok"].sum() == 1000
    next(b for b in at.button if b.label == "Rollback").click().run()
    assert _state("wine").candidate == 2  # nothing happens before the confirmation
    next(b for b in at.button if b.label == "Confirm rollback").click().run()
    assert not at.exception
    state = _state("wine")
    assert state.candidate is None and state.stable == 1


def test_the_simulator_replays_the_models_own_data_by_default(wine: Path) -> None:
    from core.data.datasets import ingest_path, list_datasets
    from core.deploy import deploy
    from tests.factories import store_session

    with store_session() as s:
        ingest_path(DATA / "breast_cancer.csv", session=s)  # newer, first in every list
    with store_session() as s:
        deploy("wine", 1, session=s)
    with store_session() as s:
        (wine,) = [d.id for d in list_datasets(session=s) if d.name == "wine"]
    at = _app().run()
    at.switch_page("pages/deployments.py").run()
    assert next(s for s in at.selectbox if s.label == "Replay rows of").value == wine
    at.button(key="FormSubmitter:simulate-Run simulator").click().run()
    assert not at.exception and at.session_state["simulation"]["errors"] == 0


def test_demo_mode_seeds_models_a_canary_and_traffic(demo: list[str]) -> None:
    from core.deploy.telemetry import stats_since

    assert not demo, "the first run in demo mode, which seeded the store, showed no exception"
    state = _state("breast_cancer")
    assert (state.stable, state.candidate, state.percent) == (1, 2, 10.0)
    with store_session() as s:
        assert stats_since("breast_cancer", 1, None, session=s).count > 0
    at = _app().run(timeout=180)
    assert not at.exception
    at.switch_page("pages/deployments.py").run()
    assert not at.exception


def test_monitor_page_shows_traffic_drift_and_acknowledges_alerts(demo: list[str]) -> None:
    at = _app().run(timeout=180)  # the demo store: two versions, a canary and some traffic
    at.switch_page("pages/monitor.py").run()
    assert not at.exception
    assert set(at.dataframe[0].value["version"]) == {"1", "2"}
    assert {"ok", "failed", "rejected"} <= set(at.dataframe[0].value.columns)
    batch = next(o for o in at.selectbox[1].options if "breast" in o)
    at.selectbox[1].set_value(int(batch.split(":")[0]))
    at.toggle[0].set_value(True)
    at.button(key="FormSubmitter:drift-Check drift").click().run()
    assert not at.exception
    report = at.session_state["drift_report"]
    assert report["model"] == "breast_cancer" and report["features"] == 30
    assert report["drifted"] == []  # the training data itself does not drift


@pytest.mark.slow  # a market search of its own
def test_leaderboard_shows_the_backtest_of_a_market_model(home: Path, tmp_path: Path) -> None:
    import pandas as pd

    stocks = pd.read_csv(DATA / "stocks.csv")
    stocks[stocks["ticker"] == "IBM"].tail(800).to_csv(tmp_path / "ibm.csv", index=False)
    result = CliRunner().invoke(app, ["automl", str(tmp_path / "ibm.csv"), "--target",
                                      "adj_close", "--target-kind", "direction",
                                      "--time-column", "date", "--budget", "4"])
    assert result.exit_code == 0, result.output
    at = _app().run()
    at.switch_page("pages/leaderboard.py").run()
    assert not at.exception
    assert [m.label for m in at.metric][-4:] == ["hit rate", "long/flat return",
                                                 "buy & hold return", "max drawdown"]


@pytest.mark.slow  # a real market search in a worker thread
def test_train_page_runs_a_market_search_with_a_backtest(db: Database, session: Session,
                                                         tmp_path: Path) -> None:
    import pandas as pd

    from core.jobs.ledger import list_jobs
    from core.usecases.worker import job_worker

    stocks = pd.read_csv(DATA / "stocks.csv")
    stocks[stocks["ticker"] == "MSFT"].tail(700).to_csv(tmp_path / "msft.csv", index=False)
    CliRunner().invoke(app, ["seed"])
    from core.data.datasets import ingest_path

    ds = ingest_path(tmp_path / "msft.csv", session=session).dataset
    thread = threading.Thread(target=job_worker(db).run, kwargs={"max_jobs": 1},
                              daemon=True)
    thread.start()
    at = _app().run()
    at.switch_page("pages/train.py").run()
    at.selectbox[0].set_value(ds.id).run()
    at.selectbox[1].set_value("adj_close")       # the price column
    at.slider[0].set_value(10)
    at.multiselect[0].set_value(["linear"])
    next(s for s in at.selectbox if s.label == "Time column (validate in time order)"
         ).set_value("date")
    next(s for s in at.selectbox if s.label == "Target").set_value("direction")
    at.button[0].click().run()
    assert not at.exception
    (job,) = list_jobs(session=session)
    assert job.settings["market"]["kind"] == "direction"
    thread.join(timeout=90)
    at.switch_page("pages/leaderboard.py").run()
    assert not at.exception
    assert "hit rate" in [m.label for m in at.metric]


def test_leaderboard_opens_older_searches_and_deep_links(two_wines: Path,
                                                         session: Session) -> None:
    from core.jobs.ledger import list_jobs
    from core.jobs.states import JobState

    older, newer = sorted(j.id for j in list_jobs(session=session)
                          if j.state == JobState.COMPLETED)
    at = _app().run()
    at.switch_page("pages/leaderboard.py").run()
    search = next(s for s in at.selectbox if s.label == "Search")
    assert search.value == newer
    search.set_value(older).run()
    assert not at.exception
    assert "Registered version 1" in " ".join(m.label for m in at.metric)
    assert at.query_params["job"] == str(older)

    for job_id in (older, newer):  # a deep link to each search
        linked = _app()
        linked.query_params["job"] = str(job_id)
        linked.run()
        linked.switch_page("pages/leaderboard.py").run()
        assert not linked.exception
        assert next(s for s in linked.selectbox if s.label == "Search").value == job_id


def _versions(name: str) -> list:
    from core.registry import list_versions
    from tests.factories import store_session

    with store_session() as s:
        return list_versions(name, session=s)


def _resolve(ref: str):
    from core.registry import resolve
    from tests.factories import store_session

    with store_session() as s:
        return resolve(ref, session=s)


def test_leaderboard_alias_button_sets_the_chosen_alias_on_the_first_click(wine: Path) -> None:
    at = _app().run()
    at.switch_page("pages/leaderboard.py").run()
    next(s for s in at.selectbox if s.label == "Set alias").set_value("staging").run()
    button = next(b for b in at.button if b.label.startswith("Point "))
    assert button.label == "Point staging at version 1"
    button.click().run()
    assert not at.exception
    assert _versions("wine")[0].aliases == ["staging"]
    assert "wine@staging → version 1" in at.success[0].value


def _texts(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("info", "markdown", "caption", "success", "error")
                    for e in getattr(at, kind))


def _page_links(at: AppTest) -> list[str]:
    return [link.proto.page for link in at.get("page_link")]


def test_empty_home_links_to_data_and_train_with_no_shell_command(home: Path) -> None:
    at = _app().run()
    assert not at.exception
    assert at.info, "the empty state's info box stays"
    assert "workbench " not in _texts(at), "a no-code user is not told to run a command"
    assert "--target" not in _texts(at)
    links = _page_links(at)
    assert any("data" in p for p in links) and any("train" in p for p in links), links


@pytest.mark.slow  # a regression search of its own
def test_regression_score_card_has_no_up_arrow_and_says_lower_is_better(home: Path) -> None:
    result = CliRunner().invoke(app, ["automl", str(DATA / "diabetes.csv"), "--target",
                                      "progression", "--budget", "3"])
    assert result.exit_code == 0, result.output
    at = _app().run()
    at.switch_page("pages/leaderboard.py").run()
    assert not at.exception
    card = next(m for m in at.metric if "rmse" in m.label)
    assert not card.delta, "no arrow: an up arrow beside rmse reads as 'higher is better'"
    assert "CV score" in card.label or "out-of-fold" in card.label
    assert "lower is better" in card.proto.help


def test_home_and_train_name_the_registered_score_apart_from_the_best_trial(wine: Path) -> None:
    (version,) = _versions("wine")
    at = _app().run()
    assert not at.exception
    jobs = at.dataframe[1].value
    assert "best" not in jobs.columns, "an unnamed 'best' is what contradicted the registry"
    assert jobs["registered score"].tolist() == pytest.approx([version.score])
    assert "best single trial (CV)" in jobs.columns
    at.switch_page("pages/jobs.py").run()
    assert not at.exception
    assert f"registered version 1: {version.score:.4f}" in at.caption[1].value


def test_choosing_regression_for_text_labels_reads_without_cli_flags() -> None:
    import pandas as pd

    from core.data.profile import detect_problem_type
    from core.errors import WorkbenchError

    with pytest.raises(WorkbenchError) as err:
        detect_problem_type(pd.Series(["a", "b", "c"], name="y"), override="regression")
    message = err.value.message
    assert "Choose the task classification" in message
    assert not message.startswith("Use --")
    assert "Use --task" not in message


def test_every_metric_and_jargon_term_has_plain_words_help() -> None:
    from core.automl.metrics import METRICS
    from core.glossary import explain

    for name, m in METRICS.items():
        text = explain(name)
        assert text and m.plain and m.direction in text, name
    assert "lower is better" in explain("rmse") and "higher is better" in explain("roc_auc")
    for term in ("tpe", "fingerprint", "PSI", "Jensen-Shannon", "KS"):
        assert explain(term), term


def test_model_version_page_deep_link_download_and_confirmed_alias(two_wines: Path) -> None:
    at = _app()
    at.query_params["model"] = "wine"
    at.query_params["version"] = "1"
    at.run()
    at.switch_page("pages/version.py").run()
    assert not at.exception
    v1, v2 = _versions("wine")
    assert next(s for s in at.selectbox if s.label == "Version").value == 1
    page = " ".join(m.value for m in at.markdown)
    assert v1.fingerprint in page and v2.fingerprint not in page
    (download,) = at.get("download_button")
    # the media id hashes the bytes, the type and the file name: the stored file of version 1
    from streamlit.runtime.memory_media_file_storage import _calculate_file_id

    from core.settings import get_settings

    stored = (get_settings().home / _resolve("wine:1")[1].artifact_path).read_bytes()
    file_id = _calculate_file_id(stored, "application/octet-stream", "wine-v1.skops")
    assert download.proto.url == f"/mock/media/{file_id}.bin"
    links = {(p.proto.page, p.proto.label) for p in at.get("page_link")}
    assert any(label == f"Leaderboard of job {v1.job_id}" for _, label in links)
    assert any(label == "Open Data" for _, label in links)
    assert at.query_params["version"] == "1"

    next(s for s in at.selectbox if s.label == "Alias").set_value("staging").run()
    at.button(key="version_alias_set").click().run()
    assert not at.exception
    assert "Point **wine@staging** at version 1?" in at.warning[0].value
    assert _versions("wine")[0].aliases == []  # nothing before the confirmation
    at.button(key="version_alias_cancel").click().run()
    assert not at.exception
    assert _versions("wine")[0].aliases == [] and not at.warning
    at.button(key="version_alias_set").click().run()
    at.button(key="version_alias_confirm").click().run()
    assert not at.exception
    assert _versions("wine")[0].aliases == ["staging"]
    assert "wine@staging → version 1" in at.success[0].value
    from core.identity import local_principal  # single-user mode: the machine's operator

    by = local_principal().actor
    assert any(f"**staging** set to version 1 by {by}" in m.value for m in at.markdown)


def test_model_version_page_refuses_to_hand_out_a_tampered_artifact(wine: Path) -> None:
    from core.settings import get_settings

    _, mv = _resolve("wine:1")
    (get_settings().home / mv.artifact_path).write_bytes(b"tampered")
    at = _app()
    at.query_params["model"] = "wine"
    at.run()
    at.switch_page("pages/version.py").run()
    assert not at.exception
    assert not at.get("download_button")
    assert "fails its fingerprint check" in at.error[0].value


def test_registry_links_each_version_to_its_page(two_wines: Path) -> None:
    at = _app().run()
    at.switch_page("pages/registry.py").run()
    assert not at.exception
    links = [p.proto for p in at.get("page_link")]
    assert [p.label for p in links] == ["Open version 2", "Open version 1"]


def test_model_version_page_on_an_empty_store_links_to_train(home: Path) -> None:
    at = _app().run()
    at.switch_page("pages/version.py").run()
    assert not at.exception
    assert [(p.proto.page, p.proto.label) for p in at.get("page_link")] == [
        ("train", "Train a model")]


def test_predict_page_scores_an_upload_and_a_what_if_row(wine: Path) -> None:
    at = _app().run()
    at.switch_page("pages/predict.py").run()
    assert not at.exception
    assert at.selectbox[1].options[0] == "latest (version 1)"  # no production alias yet
    assert CliRunner().invoke(app, ["alias", "wine", "1", "production"]).exit_code == 0
    at.run()
    assert at.selectbox[1].options[0] == "production (version 1)"
    raw = (DATA / "wine.csv").read_bytes()
    at.file_uploader[0].upload("wine.csv", raw, "text/csv").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table.columns[0] == "prediction"
    assert [c for c in table.columns[1:4]] == ["proba_class_0", "proba_class_1", "proba_class_2"]
    assert len(table) == raw.count(b"\n") - 1  # every data row, beside its input
    assert "cultivar" in table.columns
    assert len(at.get("download_button")) == 1

    at.file_uploader[0].upload("short.csv", b"alcohol,malic_acid\n14.2,1.7\n", "text/csv").run()
    assert not at.exception
    assert "'proline'" in at.error[0].value and "missing" in at.error[0].value

    at.button(key="FormSubmitter:what_if:wine:1-Predict this row").click().run()
    assert not at.exception
    (metric,) = at.metric
    assert metric.value in {"class_0", "class_1", "class_2"}
    assert len(at.get("vega_lite_chart")) == 1  # the probabilities
