"""The Runs page (AppTest): every run across experiments in one table, filtered by
experiment, status, param and metric, sorted and paginated; chosen runs compared side by side,
with a metric-history chart per run and a parallel-coordinates chart of params against the
score. Runs are logged with `core.tracking.start_run` (fast), shaped like two searches of two
models: a job-like parent with a best-so-far history and trials as child runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from app.ui.runs import SCORE_AXIS, parallel_frame
from core.store import Database
from core.tracking import start_run
from core.tracking.public import RunPublic
from tests.factories import ROOT

TRIALS = {  # experiment: (metric, [(estimator, C, score), ...])
    "wine": ("log_loss", [("linear", 0.1, 0.30), ("knn", None, 0.45), ("linear", 1.0, 0.12),
                          ("linear", 10.0, 0.20)]),
    "cancer": ("roc_auc", [("linear", 0.5, 0.90), ("linear", 5.0, 0.97), ("knn", None, 0.93)]),
}


def _search(experiment: str) -> int:
    metric, trials = TRIALS[experiment]
    lower = metric == "log_loss"
    with start_run(experiment, "search", params={"metric": metric, "budget": 10}) as parent:
        best = None
        for step, (estimator, c, score) in enumerate(trials):
            params: dict[str, Any] = {"estimator": estimator}
            if c is not None:
                params["C"] = c
            with start_run(experiment, f"trial {step}", parent_run_id=parent.run_id,
                           params=params) as trial:
                trial.log_metric(metric, score)
            best = score if best is None else (min if lower else max)(best, score)
            parent.log_metric(metric, best, step=step)
    return parent.run_id


@pytest.fixture
def searches(home: Path) -> dict[str, int]:
    ids = {name: _search(name) for name in TRIALS}
    try:
        with start_run("scratch", "broken", params={"lr": 0.1}):
            raise RuntimeError("diverged")
    except RuntimeError:
        pass
    return ids


def _page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    at.switch_page("pages/runs.py").run()
    return _ok(at)


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _table(at: AppTest) -> pd.DataFrame:
    return at.dataframe[0].value


def _multi(at: AppTest, label: str):
    return next(m for m in at.multiselect if m.label == label)


def _charts(at: AppTest) -> list[list[dict[str, Any]]]:
    return [convert_arrow_bytes_to_pandas_df(d.data.data).to_dict("records")
            for c in at.get("vega_lite_chart") for d in c.proto.datasets]


def test_every_run_across_experiments_in_one_table(searches: dict[str, int]) -> None:
    at = _page()
    table = _table(at)
    assert sorted(table["experiment"]) == ["cancer", "scratch", "wine"]  # top-level runs
    assert table["id"].tolist() == sorted(table["id"], reverse=True)  # newest first
    assert table.set_index("experiment").loc["wine", "log_loss"] == pytest.approx(0.12)
    assert table.set_index("experiment").loc["scratch", "status"] == "FAILED"
    next(t for t in at.toggle if t.label == "Include trials").set_value(True).run()
    assert len(_table(_ok(at))) == 3 + 4 + 3


def test_filters_by_experiment_status_param_and_metric(searches: dict[str, int]) -> None:
    at = _page()
    _multi(at, "Experiments").set_value(["wine", "cancer"]).run()
    assert sorted(_table(_ok(at))["experiment"]) == ["cancer", "wine"]
    _multi(at, "Experiments").set_value([]).run()
    _multi(at, "Status").set_value(["FAILED"]).run()
    assert _table(_ok(at))["name"].tolist() == ["broken"]
    _multi(at, "Status").set_value([]).run()
    next(t for t in at.toggle if t.label == "Include trials").set_value(True).run()
    at.text_input(key="runs_filter").input("params.estimator=linear; metrics.roc_auc>0.92").run()
    assert _table(_ok(at))["name"].tolist() == ["trial 1"]  # cancer's C=5.0 trial
    at.text_input(key="runs_filter").input("params.C>=1").run()
    assert sorted(_table(_ok(at))["params"]) == ["C=1.0, estimator=linear",
                                                  "C=10.0, estimator=linear",
                                                  "C=5.0, estimator=linear"]


def test_a_bad_filter_says_what_is_wrong_without_a_traceback(searches: dict[str, int]) -> None:
    at = _page()
    at.text_input(key="runs_filter").input("metrics.roc_auc>high").run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert "metrics compare with a number, not 'high'" in error
    assert "Nothing is listed until the filter is fixed" in error


def test_sort_and_paginate(searches: dict[str, int]) -> None:
    at = _page()
    next(t for t in at.toggle if t.label == "Include trials").set_value(True).run()
    at.selectbox(key="runs_sort").set_value("metrics.log_loss").run()
    next(t for t in at.toggle if t.label == "Descending").set_value(False).run()
    table = _table(_ok(at))
    scored = table["log_loss"].dropna().tolist()
    assert scored == sorted(scored) and scored[0] == pytest.approx(0.12)
    assert table["log_loss"].iloc[len(scored):].isna().all()  # runs without it come last
    db = Database()
    try:
        for i in range(30):  # 33 top-level runs in all: two pages of 25
            with start_run("bulk", f"r{i}", db=db):
                pass
    finally:
        db.dispose()
    at = _page()
    caption = next(c.value for c in at.caption if c.value.startswith("Runs "))
    assert caption.startswith("Runs 1–25 of 33")
    at.number_input(key="runs_page").set_value(2).run()
    assert len(_table(_ok(at))) == 8
    assert next(c.value for c in at.caption if c.value.startswith("Runs ")).startswith(
        "Runs 26–33 of 33")


def test_two_searches_compared_side_by_side_with_their_charts(
        searches: dict[str, int]) -> None:
    at = _page()
    wine, cancer = searches["wine"], searches["cancer"]
    _multi(at, "Compare runs").set_value([wine, cancer]).run()
    _ok(at)
    metrics, params = at.dataframe[1].value, at.dataframe[2].value
    heads = [f"{wine} · wine · search", f"{cancer} · cancer · search"]
    assert list(metrics.columns) == ["key", *heads, "differs"]
    by_key = metrics.set_index("key")
    assert by_key.loc["log_loss", heads[0]] == pytest.approx(0.12)
    assert pd.isna(by_key.loc["log_loss", heads[1]])
    assert by_key.loc["roc_auc", heads[1]] == pytest.approx(0.97)
    assert params.set_index("key").loc["metric"].tolist() == ["log_loss", "roc_auc", True]
    next(t for t in at.toggle if t.label == "Only what differs").set_value(True).run()
    assert "budget" not in at.dataframe[2].value["key"].tolist()  # both 10

    data = _charts(at)
    histories = [rows for rows in data if rows and set(rows[0]) == {"step", "value", "at"}]
    assert [r["value"] for r in histories[0]] == pytest.approx([0.30, 0.30, 0.12, 0.12])
    assert [r["value"] for r in histories[1]] == pytest.approx([0.90, 0.97, 0.97])
    (parallel,) = [rows for rows in data if rows and "axis" in rows[0]]
    lines = {r["run"] for r in parallel}
    assert len(lines) == 4, "one line per trial of the first search"
    assert {r["axis"] for r in parallel} == {"C", "estimator", SCORE_AXIS}

    at.selectbox(key="runs_parallel_source").set_value(
        f"trials of {heads[1]}").run()
    (parallel,) = [rows for rows in _charts(_ok(at)) if rows and "axis" in rows[0]]
    assert len({r["run"] for r in parallel}) == 3
    assert at.selectbox(key="runs_parallel_source").value.startswith("trials of")
    assert next(s for s in at.selectbox if s.label == "Score").value == "roc_auc"


def test_a_comparison_is_a_link_to_share(searches: dict[str, int]) -> None:
    wine, cancer = searches["wine"], searches["cancer"]
    at = _page()
    _multi(at, "Compare runs").set_value([cancer, wine]).run()
    assert at.query_params["runs"] == f"{cancer},{wine}"

    linked = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    linked.query_params["runs"] = f"{wine},{cancer},999"
    linked.run()
    linked.switch_page("pages/runs.py").run()
    assert not linked.exception and not linked.error
    assert _multi(linked, "Compare runs").value == [wine, cancer]
    assert "do not exist (any more): 999" in linked.warning[0].value
    assert list(linked.dataframe[1].value.columns)[1:3] == [f"{wine} · wine · search",
                                                           f"{cancer} · cancer · search"]


def test_parallel_frame_scales_params_and_skips_flat_ones() -> None:
    def run(i: int, params: dict[str, str], score: float) -> RunPublic:
        return RunPublic(id=i, experiment="e", name=f"r{i}", status="FINISHED", source="user",
                         start_time="2026-01-01T00:00:00", end_time=None, duration_s=None,
                         parent_run_id=None, dataset_id=None, job_id=None, version_id=None,
                         params=params, metrics={"auc": score}, tags={})

    frame = parallel_frame([run(1, {"C": "1", "k": "a", "flat": "x"}, 0.8),
                            run(2, {"C": "3", "k": "b", "flat": "x"}, 0.9),
                            run(3, {"k": "c", "flat": "x"}, 0.7)], "auc")
    scaled = {(r.axis, r.run): r.scaled for r in frame.itertuples()}
    assert "flat" not in set(frame["axis"])
    assert (scaled[("C", "1 · e · r1")], scaled[("C", "2 · e · r2")]) == (0.0, 1.0)
    assert ("C", "3 · e · r3") not in scaled  # no C: no point on that axis
    assert [scaled[("k", f"{i} · e · r{i}")] for i in (1, 2, 3)] == [0.0, 0.5, 1.0]
    assert scaled[(SCORE_AXIS, "2 · e · r2")] == 1.0 and scaled[(SCORE_AXIS, "3 · e · r3")] == 0
