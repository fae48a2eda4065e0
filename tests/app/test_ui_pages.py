"""AppTest over every page, twice: on an empty home (no exception, and guidance that says what
to do next with a link to the page that does it) and on a busy home (two datasets, two models,
three searches, three versions, a canary with traffic and an open alert), where each page must
show what that store holds, for every model and search it offers, not only the first.

The busy home is built once per module (three short searches) and each test works on a copy,
as tests/app/test_ui.py does with its homes."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from app.cli import app
from tests.factories import CANCER, ROOT, WINE, built_home, copy_home

KNOWN = ["pages/home.py", "pages/data.py", "pages/train.py", "pages/leaderboard.py",
         "pages/registry.py", "pages/version.py", "pages/predict.py", "pages/deployments.py",
         "pages/monitor.py", "pages/jobs.py"]
# every page of the app's navigation, so a page added later is covered without editing this
PAGES = re.findall(r'st\.Page\(\s*"(pages/\w+\.py)"', (ROOT / "streamlit_app.py").read_text())
# where an empty page sends a new user; Data is the first step itself (its uploader is there)
EMPTY_LINKS = {"pages/home.py": {"data", "train"}, "pages/data.py": set(),
               "pages/train.py": {"data"}, "pages/leaderboard.py": {"train"},
               "pages/registry.py": {"train"}, "pages/version.py": {"train"},
               "pages/predict.py": {"train"}, "pages/deployments.py": {"train"},
               "pages/monitor.py": {"train"}, "pages/jobs.py": {"train"}}


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)


def _automl(data: Path, target: str) -> None:
    result = CliRunner().invoke(app, ["automl", str(data), "--target", target, "--budget", "3"])
    assert result.exit_code == 0, result.output


def _drifted_wine() -> pd.DataFrame:
    """Wine rows whose alcohol moved far from what the models saw: one drifted feature."""
    frame = pd.read_csv(WINE).drop(columns=["cultivar"])
    frame["alcohol"] = frame["alcohol"] + 5
    return frame


@pytest.fixture(scope="module")
def busy_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """wine versions 1 and 2 (two searches), breast_cancer version 1 (a third search on a
    second dataset); wine@production → 1 with version 2 as a 10 % canary and 300 simulated
    requests; one open DRIFT alert on wine (raised from a drift report, as the Monitor page
    does, with the monitor opening alerts on the first bad check)."""
    from core.deploy.deployments import deploy
    from core.deploy.simulator import simulate
    from core.monitor.alerts import set_config
    from core.monitor.offline import drift_report
    from core.registry import PRODUCTION
    from core.store import Database
    from core.usecases.alert_actions import raise_drift_alerts
    from core.usecases.aliases import set_alias

    with built_home(tmp_path_factory, "busy") as path:
        _automl(WINE, "cultivar")
        _automl(WINE, "cultivar")
        _automl(CANCER, "diagnosis")
        db = Database()
        try:
            with db.session() as s:
                set_alias("wine", 1, PRODUCTION, session=s, actor="test")
            with db.session() as s:
                deploy("wine", 2, 10.0, session=s, actor="test")
            simulate("wine", pd.read_csv(WINE).drop(columns=["cultivar"]), 300, db=db)
            with db.session() as s:
                set_config("wine", session=s, consecutive=1)
            with db.session() as s:
                opened = raise_drift_alerts(drift_report("wine", _drifted_wine(), session=s),
                                            session=s)
            assert [a.feature for a in opened] == ["alcohol"]
        finally:
            db.dispose()
    return path


@pytest.fixture
def busy(home: Path, busy_home: Path) -> Path:
    return copy_home(busy_home, home)


def _texts(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("title", "subheader", "info", "markdown",
                                              "caption", "success", "warning", "error")
                    for e in getattr(at, kind))


def _links(at: AppTest) -> list[str]:
    return [link.proto.page for link in at.get("page_link")]


def _box(at: AppTest, label: str):
    return next(s for s in at.selectbox if s.label == label)


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def _frame_with(at: AppTest, *columns: str) -> pd.DataFrame:
    """The first table on the page that has all these columns."""
    return next(f.value for f in at.dataframe if set(columns) <= set(f.value.columns))


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


# -- an empty home ----------------------------------------------------------------------------
@pytest.mark.parametrize("page_file", PAGES)
def test_every_page_on_an_empty_home_says_what_to_do_and_links_there(page_file: str,
                                                                     home: Path) -> None:
    at = _app().run()
    at.switch_page(page_file).run()
    _ok(at)
    assert at.info, "an empty page says what to do next"
    links = " ".join(_links(at))
    missing = [p for p in EMPTY_LINKS.get(page_file, set()) if p not in links]
    assert not missing, f"{page_file} on an empty home links to no page for {missing}: {links!r}"
    assert links or page_file == "pages/data.py", f"{page_file} names a next step without a link"
    if page_file == "pages/data.py":
        assert at.file_uploader, "Data's empty state points at its own uploader"


# -- a busy home: every page, every model and search it offers --------------------------------
def _home(at: AppTest) -> None:
    metrics = _metrics(at)
    assert (metrics["Models"], metrics["Datasets"], metrics["Jobs"]) == ("2", "2", "3")
    assert sorted(_frame_with(at, "name", "versions")["name"]) == ["breast_cancer", "wine"]
    jobs = _frame_with(at, "registered score")
    assert len(jobs) == 3 and set(jobs["state"]) == {"COMPLETED"}
    assert jobs["registered score"].notna().all()


def _data(at: AppTest) -> None:
    assert len(_box(at, "Dataset").options) == 2
    for ds_id, task in ((1, "multiclass"), (2, "binary")):  # wine, then breast_cancer
        chosen = _app()  # arriving with the dataset chosen elsewhere (Train, an upload)
        chosen.session_state["dataset_id"] = ds_id
        chosen.run()
        chosen.switch_page("pages/data.py").run()
        _ok(chosen)
        assert _box(chosen, "Dataset").value == ds_id
        assert f"Detected **{task}**" in _texts(chosen), ds_id
        assert len(chosen.get("vega_lite_chart")) >= 1, "the chosen column's distribution"


def _train(at: AppTest) -> None:
    assert len(_box(at, "Dataset").options) == 2
    assert any(b.label == "Start training" for b in at.button)
    for job in (1, 3):  # a deep link to a finished job shows its result
        linked = _app()
        linked.query_params["job"] = str(job)
        linked.run()
        linked.switch_page("pages/train.py").run()
        _ok(linked)
        assert any(f"Job {job}:" in h.value for h in linked.subheader)
        assert "Done: registered version 1" in linked.success[0].value
        assert any("leaderboard" in p for p in _links(linked))


def _leaderboard(at: AppTest) -> None:
    search = _box(at, "Search")
    assert search.value == 3 and sorted(search.options) == sorted(
        ["job 1: wine (log_loss)", "job 2: wine (log_loss)",
         "job 3: breast_cancer (roc_auc)"])
    for job, version in ((1, 1), (2, 2), (3, 1)):
        _box(at, "Search").set_value(job).run()
        _ok(at)
        assert any(label.startswith(f"Registered version {version} ")
                   for label in _metrics(at)), (job, _metrics(at))
        assert at.query_params["job"] == str(job)
        assert any(b.label == f"Point production at version {version}" for b in at.button)
        assert len(at.get("vega_lite_chart")) >= 4, job


def _registry(at: AppTest) -> None:
    for name, versions in (("wine", [1, 2]), ("breast_cancer", [1])):
        _box(at, "Model").set_value(name).run()
        _ok(at)
        assert at.dataframe[0].value["version"].tolist() == versions
        assert len([p for p in _links(at) if "version" in p]) == len(versions)
    _box(at, "Model").set_value("wine").run()
    table = at.dataframe[0].value.set_index("version")
    assert table.loc[1, "aliases"] == "production"
    assert not at.dataframe[1].value.empty, "the alias history of wine"


def _version(at: AppTest) -> None:
    for name, version, aliases in (("wine", 1, "production"), ("wine", 2, "none"),
                                   ("breast_cancer", 1, "none")):
        linked = _app()
        linked.query_params.update({"model": name, "version": str(version)})
        linked.run()
        linked.switch_page("pages/version.py").run()
        _ok(linked)
        assert _box(linked, "Model").value == name
        assert _box(linked, "Version").value == version
        assert _metrics(linked)["Aliases"] == aliases
        assert linked.get("download_button"), "the artifact's download"
        assert any("leaderboard" in p for p in _links(linked)), "lineage: its search"


def _predict(at: AppTest) -> None:
    for name, ref in (("wine", "wine:1"), ("breast_cancer", "breast_cancer:1")):
        at.selectbox(key="predict_model").set_value(name).run()
        _ok(at)
        assert f"Scoring with **{ref}**" in _texts(at)
        assert any(b.label == "Predict this row" for b in at.button)
    at.selectbox(key="predict_model").set_value("wine").run()
    at.selectbox(key="predict_version:wine").set_value(2).run()
    _ok(at)
    assert "Scoring with **wine:2**" in _texts(at)


def _deployments(at: AppTest) -> None:
    _box(at, "Model").set_value("wine").run()
    _ok(at)
    metrics = _metrics(at)
    assert (metrics["Stable (production)"], metrics["Candidate"],
            metrics["Candidate traffic"]) == ("1", "2", "10%")
    assert _frame_with(at, "version", "requests")["requests"].sum() == 300
    assert len(at.dataframe[-1].value) >= 1, "the deployment history"
    assert any(b.label == "Rollback" for b in at.button)
    _box(at, "Model").set_value("breast_cancer").run()
    _ok(at)
    assert _metrics(at)["Candidate"] == "–"


def _monitor(at: AppTest) -> None:
    from core.monitor.alerts import list_alerts
    from tests.factories import store_session

    with store_session() as s:
        (alert,) = list_alerts("wine", session=s)
    _box(at, "Model").set_value("wine").run()
    _ok(at)
    assert _box(at, "Alert").value == alert.id, "the open alert, ready to acknowledge"
    assert any(b.label == "Acknowledge" for b in at.button)
    assert _frame_with(at, "version", "requests")["requests"].sum() == 300
    _box(at, "Model").set_value("breast_cancer").run()
    _ok(at)
    assert not any(b.label == "Acknowledge" for b in at.button)
    assert "No open alerts." in _texts(at)


def _jobs(at: AppTest) -> None:
    ledger = _frame_with(at, "id", "state", "model")
    assert sorted(ledger["id"]) == [1, 2, 3]
    assert set(ledger["model"]) == {"wine", "breast_cancer"}
    for job in (1, 2, 3):
        at.selectbox(key="jobs_pick").set_value(job).run()
        _ok(at)
        cancel = next(b for b in at.button if b.label == "Cancel")
        assert cancel.disabled, f"job {job} is finished: nothing to cancel"


BUSY: dict[str, Callable[[AppTest], None]] = {
    "pages/home.py": _home, "pages/data.py": _data, "pages/train.py": _train,
    "pages/leaderboard.py": _leaderboard, "pages/registry.py": _registry,
    "pages/version.py": _version, "pages/predict.py": _predict,
    "pages/deployments.py": _deployments, "pages/monitor.py": _monitor,
    "pages/jobs.py": _jobs}


@pytest.mark.parametrize("page_file", PAGES)
def test_every_page_on_a_busy_home_shows_each_model_and_search(page_file: str,
                                                               busy: Path) -> None:
    at = _app().run()
    at.switch_page(page_file).run()
    _ok(at)
    assert at.title, "every page says where the user is"
    BUSY.get(page_file, _ok)(at)  # a page added later: no exception and no error box, at least


def test_the_navigation_lists_every_page_checked_here() -> None:
    assert set(KNOWN) <= set(PAGES), PAGES


def test_picking_one_dataset_then_another_shows_the_second(busy: Path) -> None:
    """Fails on main: pick_dataset gave an unkeyed selectbox an index that follows the last
    pick, so every second pick in a row landed on a new widget and was dropped."""
    at = _app().run()
    at.switch_page("pages/data.py").run()
    _box(at, "Dataset").set_value(1).run()
    assert "Detected **multiclass**" in _texts(at)  # wine
    _box(at, "Dataset").set_value(2).run()
    _ok(at)
    assert _box(at, "Dataset").value == 2
    assert "Detected **binary**" in _texts(at)  # breast_cancer
    at.switch_page("pages/train.py").run()  # the pick follows the user to Train
    assert _box(at, "Dataset").value == 2
