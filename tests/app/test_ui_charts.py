"""Charts that show everything (issue 14.7) and the Compare page (issue 14, "Compare across
searches").

The chart builders are pure: their tests read the Vega-Lite spec (`chart.to_dict()`). The page
tests run the app on a copy of one home built once for this module: two searches of wine (a
multiclass model, versions 1 and 2) and one of breast cancer (a binary model with a ROC
curve), so several models and several searches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from app.cli import app
from app.ui import charts
from app.ui.compare import default_versions, split_list
from core.enums import TrialState
from tests.factories import CANCER, ROOT, WINE, built_home, copy_home, store_session


def _app() -> AppTest:
    return AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)


def _datasets(spec: dict[str, Any]) -> list[list[dict[str, Any]]]:
    return list(spec.get("datasets", {}).values())


def _layers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return spec.get("layer", [spec])


def _specs(at: AppTest) -> list[dict[str, Any]]:
    """The page's charts as specs, with the datasets Streamlit sends apart (as Arrow) put
    back under "datasets" as rows, like `chart.to_dict()` has them."""
    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    specs = []
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        spec["datasets"] = {
            d.name: convert_arrow_bytes_to_pandas_df(d.data.data).to_dict("records")
            for d in chart.proto.datasets}
        specs.append(spec)
    return specs


def _trials(rows: list[tuple[int, str, float | None, str, float | None]]) -> pd.DataFrame:
    return pd.DataFrame([{"trial": n, "estimator": est, "score": score, "std": None,
                          "fit_time_s": 0.1, "predict_ms_per_1k": ms, "status": status,
                          "reason": "" if status == TrialState.OK else f"{status} here",
                          "params": ""} for n, est, score, status, ms in rows])


# A search where one family (xgboost) only failed and another (knn) was only pruned.
SEARCH = _trials([(0, "logistic", 0.91, "ok", 1.0), (1, "forest", 0.95, "ok", 5.0),
                  (2, "xgboost", None, "failed", None), (3, "knn", None, "pruned", 2.0),
                  (4, "forest", 0.93, "ok", 6.0), (5, "xgboost", None, "failed", None),
                  (6, "knn", None, "pruned", 3.0)])


# -- 14.7: chart builders -------------------------------------------------------------------
def test_feature_importance_labels_every_bar() -> None:
    rows = [{"feature": f"a_rather_long_feature_name_{i}", "importance": 1 / (i + 1), "std": 0}
            for i in range(15)]
    spec = charts.importance(rows).to_dict()
    axis = spec["encoding"]["y"]["axis"]
    # the Streamlit theme sets labelOverlap=true (drops every other label) and labelLimit=100
    assert axis["labelOverlap"] is False and axis["labelLimit"] == 0
    assert spec["height"] == {"step": charts.BAR_STEP}, "a fixed height per bar, not a squeeze"
    assert len(_datasets(spec)[0]) == 15


def test_best_so_far_shows_pruned_and_failed_trials_of_every_family() -> None:
    spec = charts.best_so_far(SEARCH, "roc_auc", greater_is_better=True).to_dict()
    points, line = _layers(spec)
    drawn = {row["trial"]: row for data in _datasets(spec) for row in data if "state" in row}
    assert sorted(drawn) == list(range(7)), "every trial is drawn, whatever its state"
    floor = {row["y"] for row in drawn.values() if row["state"] != TrialState.OK}
    assert len(floor) == 1 and floor.pop() < 0.91, "unscored trials sit below every score"
    assert points["encoding"]["color"]["scale"]["domain"] == ["forest", "knn", "logistic",
                                                               "xgboost"]
    shape = points["encoding"]["shape"]["scale"]
    assert shape["domain"] == ["ok", "pruned", "failed"] and len(set(shape["range"])) == 3
    assert drawn[2]["score"] is None, "a failed trial's score stays empty (the tooltip)"


def test_unscored_trials_never_look_like_the_best_of_a_lower_is_better_metric() -> None:
    losses = SEARCH.assign(score=SEARCH["score"].map(lambda v: None if pd.isna(v) else 1 - v))
    for spec in (charts.best_so_far(losses, "log_loss", greater_is_better=False).to_dict(),
                 charts.score_vs_speed(losses, "log_loss").to_dict()):
        rows = [r for data in _datasets(spec) for r in data if "state" in r]
        worst = max(r["score"] for r in rows if r["state"] == TrialState.OK)
        assert all(r["y"] > worst for r in rows if r["state"] != TrialState.OK)


def test_trial_numbers_are_whole_on_the_axis() -> None:
    spec = charts.best_so_far(SEARCH, "roc_auc", greater_is_better=True).to_dict()
    axis = _layers(spec)[0]["encoding"]["x"]["axis"]
    assert axis["tickMinStep"] == 1 and axis["format"] == "d"


def test_score_vs_speed_shows_timed_pruned_trials_and_every_family() -> None:
    spec = charts.score_vs_speed(SEARCH, "roc_auc").to_dict()
    drawn = [row for data in _datasets(spec) for row in data]
    assert sorted(r["trial"] for r in drawn) == [0, 1, 3, 4, 6]  # failed ones were never timed
    assert spec["encoding"]["color"]["scale"]["domain"] == ["forest", "knn", "logistic",
                                                             "xgboost"]


def test_trial_counts_name_every_family_and_state() -> None:
    counts = charts.trial_counts(SEARCH).set_index("family")
    assert counts.loc["xgboost"].to_dict() == {"scored": 0, "pruned": 0, "failed": 2, "total": 2}
    assert counts.loc["knn", "pruned"] == 2
    assert counts.loc["all"].to_dict() == {"scored": 3, "pruned": 2, "failed": 2, "total": 7}
    assert charts.trial_counts(SEARCH.iloc[:0]).empty


def test_roc_curve_has_the_diagonal_and_the_auc() -> None:
    points = {"fpr": [0.0, 0.0, 0.5, 1.0], "tpr": [0.0, 0.5, 1.0, 1.0]}
    spec = charts.roc_curve(points, auc=0.8766).to_dict()
    assert spec["title"]["text"] == "ROC curve (AUC 0.877)"
    diagonal = [d for d in _datasets(spec) if d == [{"fpr": 0.0, "tpr": 0.0},
                                                    {"fpr": 1.0, "tpr": 1.0}]]
    assert diagonal, "the coin-toss diagonal is drawn"
    # without a stored AUC, the area under the drawn points
    assert "AUC 0.875" in charts.roc_curve(points).to_dict()["title"]["text"]


@pytest.mark.parametrize(("dates", "unit", "bars"), [
    (pd.date_range("2024-01-01", periods=40, freq="D"), "day", 40),
    (pd.date_range("2024-01-01", periods=200, freq="D"), "week", 29),
    (pd.date_range("2020-01-01", periods=900, freq="D"), "month", 30),
    (pd.date_range("1959-03-31", periods=200, freq="QE"), "year", 50),
])
def test_a_date_column_is_charted_over_time(dates: pd.DatetimeIndex, unit: str,
                                            bars: int) -> None:
    as_text = pd.Series(dates.strftime("%Y-%m-%d"))  # as a CSV holds them
    spec = charts.distribution(as_text, "visit", kind="datetime").to_dict()
    assert spec["encoding"]["x"]["type"] == "temporal"
    assert spec["encoding"]["y"]["title"] == f"rows per {unit}"
    assert spec["encoding"]["y2"] == {"datum": 0}, "each bar starts at zero rows"
    (data,) = _datasets(spec)
    assert len(data) == bars and sum(r["rows"] for r in data) == len(dates)


def test_numbers_and_categories_keep_their_charts() -> None:
    numbers = charts.distribution(pd.Series([1.0, 2.0, 2.5, None]), "a.b").to_dict()
    assert numbers["encoding"]["x"]["bin"] and numbers["encoding"]["x"]["title"] == "a.b"
    words = charts.distribution(pd.Series([f"w{i % 40}" for i in range(100)]), "word")
    spec = words.to_dict()
    assert spec["title"] == "The 30 most common of 40 values"
    assert spec["encoding"]["y"]["axis"]["labelOverlap"] is False


def test_a_bare_compare_opens_a_retrain_against_its_predecessor() -> None:
    assert default_versions(["cancer:1", "wine:3", "wine:2", "wine:1"]) == ["wine:3", "wine:2"]
    assert default_versions(["cancer:1", "wine:1"]) == ["cancer:1", "wine:1"]
    assert default_versions([]) == []


def test_query_lists_are_split_once_each() -> None:
    assert split_list(" wine:1, wine:2,,wine:1 ") == ["wine:1", "wine:2"]
    assert split_list(None) == []


# -- pages on a store with several models and searches --------------------------------------
def _train(path: Path, target: str) -> None:
    result = CliRunner().invoke(app, ["automl", str(path), "--target", target, "--budget", "3"])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def several_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """wine twice (jobs 1 and 2, versions wine:1 and wine:2) and breast cancer once (job 3,
    cancer:1, binary)."""
    with built_home(tmp_path_factory, "several") as path:
        _train(WINE, "cultivar")
        _train(WINE, "cultivar")
        _train(CANCER, "diagnosis")
    return path


@pytest.fixture
def several(home: Path, several_home: Path) -> Path:
    return copy_home(several_home, home)


def _jobs() -> dict[str, list[int]]:
    from core.jobs.ledger import list_jobs

    with store_session() as s:
        out: dict[str, list[int]] = {}
        for j in sorted(list_jobs(session=s), key=lambda j: j.id):
            out.setdefault(j.model_name, []).append(j.id)
        return out


def _trial_states(job_id: int) -> list[str]:
    from core.jobs.views import read_trials

    with store_session() as s:
        return [t.status for t in read_trials(job_id, session=s)]


def _page(path: str, **params: str) -> AppTest:
    at = _app()
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    at.switch_page(path).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_leaderboard_counts_trials_and_titles_the_roc_with_its_auc(several: Path) -> None:
    (cancer_job,) = _jobs()["breast_cancer"]
    at = _page("pages/leaderboard.py", job=str(cancer_job))
    counts = next(d.value for d in at.dataframe if "family" in d.value.columns)
    states = _trial_states(cancer_job)
    assert counts.set_index("family").loc["all", "total"] == len(states)
    rocs = [s for s in _specs(at) if "ROC curve (AUC" in json.dumps(s.get("title", ""))]
    assert len(rocs) == 1
    assert any(d == [{"fpr": 0.0, "tpr": 0.0}, {"fpr": 1.0, "tpr": 1.0}]
               for d in _datasets(rocs[0])), "the diagonal is on the page's ROC chart"
    links = [(link.proto.page, link.proto.query_string) for link in at.get("page_link")]
    assert any("compare" in page and f"jobs={cancer_job}" in query for page, query in links)


def test_data_page_charts_a_date_column_over_time(home: Path) -> None:
    days = pd.date_range("2023-01-01", periods=500, freq="D")
    table = pd.DataFrame({"visit": days.strftime("%Y-%m-%d"), "amount": range(500)})
    at = _page("pages/data.py")
    at.file_uploader[0].upload("visits.csv", table.to_csv(index=False).encode(), "text/csv")
    at.run()
    next(s for s in at.selectbox if s.label == "Distribution of").set_value("visit").run()
    assert not at.exception
    (spec,) = _specs(at)
    assert spec["encoding"]["x"]["type"] == "temporal", "not 30 bars of one row each"
    (data,) = _datasets(spec)
    assert len(data) == 17 and sum(r["rows"] for r in data) == 500  # Jan 2023 to May 2024


def test_compare_deep_link_to_versions_of_two_models(several: Path) -> None:
    at = _page("pages/compare.py", versions="wine:1,breast_cancer:1,wine:9")
    assert at.radio[0].value == "Versions"
    assert at.multiselect[0].value == ["wine:1", "breast_cancer:1"]
    assert "wine:9" in at.warning[0].value
    overview, metrics, params = (d.value for d in at.dataframe)
    assert list(overview.columns) == ["field", "wine:1", "breast_cancer:1"]
    row = overview.set_index("field").loc["registered score"]
    assert "(CV score)" in row["wine:1"] or "(out-of-fold)" in row["wine:1"]
    assert set(metrics["metrics"]) == {"out-of-fold cross-validation"}
    assert metrics.set_index("metric").loc["roc_auc", "wine:1"] > 0.5
    assert "parameter" in params.columns
    (chart,) = _specs(at)
    drawn = {r["version"] for d in _datasets(chart) for r in d}
    assert drawn == {"wine:1", "breast_cancer:1"}
    assert at.query_params["versions"] == "wine:1,breast_cancer:1"
    links = [link.proto.page for link in at.get("page_link")]
    assert sum("version" in p for p in links) == 2


def test_compare_two_searches_of_one_model_by_deep_link(several: Path) -> None:
    first, second = _jobs()["wine"]
    at = _page("pages/compare.py", jobs=f"{first},{second}")
    assert at.radio[0].value == "Searches"
    assert at.multiselect[0].value == [first, second]
    overview = at.dataframe[0].value.set_index("field")
    assert list(overview.columns) == [f"job {first}: wine", f"job {second}: wine"]
    scored, pruned, failed = overview.loc["trials (scored / pruned / failed)",
                                          f"job {first}: wine"].split(" / ")
    assert int(scored) + int(pruned) + int(failed) == len(_trial_states(first))
    assert overview.loc["registered version", f"job {second}: wine"] == "wine:2"
    (chart,) = _specs(at)
    rows = [r for d in _datasets(chart) for r in d]
    assert {r["search"] for r in rows} == {f"job {first}: wine", f"job {second}: wine"}
    families = next(d.value for d in at.dataframe if "family" in d.value.columns)
    assert families["trials"].sum() == len(_trial_states(first)) + len(_trial_states(second))
    settings = next(d.value for d in at.dataframe if "setting" in d.value.columns)
    assert "budget" in settings["setting"].tolist()


def test_compare_searches_scored_by_different_metrics(several: Path) -> None:
    (wine_job, _), (cancer_job,) = _jobs()["wine"], _jobs()["breast_cancer"]
    at = _page("pages/compare.py", jobs=f"{wine_job},{cancer_job},77,x")
    assert "77, x" in at.warning[0].value
    metric = next(s for s in at.selectbox if s.label == "Metric")
    assert metric.options == ["log_loss (lower is better)", "roc_auc (higher is better)"]
    assert any("Not on this chart" in c.value for c in at.caption)
    metric.set_value("roc_auc").run()
    assert not at.exception
    (chart,) = _specs(at)
    assert {r["search"] for d in _datasets(chart) for r in d} == {
        f"job {cancer_job}: breast_cancer"}


@pytest.mark.parametrize("page_file", ["pages/compare.py"])
def test_compare_page_on_an_empty_store_and_on_its_own(page_file: str, home: Path) -> None:
    at = _page(page_file)
    assert at.info and "compare" in at.info[0].value.lower()
    alone = AppTest.from_file(str(ROOT / page_file), default_timeout=60).run()
    assert not alone.exception


def test_bare_compare_shows_the_latest_retrain_and_switches_to_searches(several: Path) -> None:
    at = _page("pages/compare.py")
    assert at.multiselect[0].value == ["wine:2", "wine:1"]
    assert at.query_params["versions"] == "wine:2,wine:1"
    at.radio[0].set_value("Searches").run()
    assert not at.exception
    assert len(at.multiselect[0].value) == 2 and "versions" not in at.query_params
    assert at.query_params["jobs"] == ",".join(map(str, at.multiselect[0].value))
