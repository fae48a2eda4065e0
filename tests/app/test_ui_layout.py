"""Issue 14.9, layout: one time format with its zone everywhere, stored JSON as readable text,
and chart/card rows that wrap instead of shrinking (the pixel widths themselves are measured
in a browser by tests/e2e/test_layout.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app.ui.layout import CHART_WIDTH
from app.ui.readable import (
    alias_history_frame,
    aliases_text,
    deployment_change,
    deployment_history_frame,
    detail_text,
)
from app.ui.times import time_tooltip, time_x, times_as_text, when
from core.deploy.public import DeploymentEvent
from core.registry import AliasEventPublic
from tests.app.test_ui import _app, _state, two_wines, two_wines_home, wine, wine_home
from tests.factories import ROOT

__all__ = ["two_wines", "two_wines_home", "wine", "wine_home"]  # fixtures shared with test_ui

AFTERNOON = datetime(2026, 12, 2, 16, 11, 5)  # naive, as SQLite hands it back: UTC


# -- one time format ----------------------------------------------------------------------
def test_a_stored_time_reads_as_a_24_hour_clock_with_its_zone() -> None:
    assert when(AFTERNOON) == "2026-12-02 16:11 UTC"  # not "04:11"
    assert when(AFTERNOON, seconds=True) == "2026-12-02 16:11:05 UTC"


def test_aware_times_and_iso_text_are_shown_in_utc() -> None:
    berlin = AFTERNOON.replace(tzinfo=UTC).astimezone(timezone(timedelta(hours=1)))
    assert when(berlin) == "2026-12-02 16:11 UTC"
    assert when("2026-12-02T16:11:05") == "2026-12-02 16:11 UTC"  # a model_dump(mode="json")
    assert when("2026-12-02T17:11:05+01:00") == "2026-12-02 16:11 UTC"
    assert when(pd.Timestamp(AFTERNOON)) == "2026-12-02 16:11 UTC"


def test_no_time_is_a_dash_and_text_that_is_no_time_stays_as_written() -> None:
    assert when(None) == when(pd.NaT) == when(float("nan")) == "–"
    assert when("never") == "never"


def test_time_columns_of_a_table_become_text_in_time_order() -> None:
    frame = pd.DataFrame({"id": [1, 2], "at": [AFTERNOON, AFTERNOON - timedelta(hours=5)]})
    shown = times_as_text(frame, ["at", "absent"])
    assert shown["at"].tolist() == ["2026-12-02 16:11 UTC", "2026-12-02 11:11 UTC"]
    assert shown.sort_values("at")["id"].tolist() == [2, 1]
    assert frame["at"].dtype.kind == "M", "the caller's frame is not changed"


def test_a_time_axis_is_drawn_in_utc_with_24_hour_labels() -> None:
    axis = time_x("at").to_dict()
    assert axis["scale"] == {"type": "utc"}
    label = axis["axis"]["labelExpr"]
    assert "utcFormat(datum.value, '%H:%M')" in label and "%I" not in label
    assert axis["title"] == "time (UTC)"
    tip = time_tooltip("at").to_dict()
    assert tip["formatType"] == "utc" and tip["format"].endswith("%H:%M:%S UTC")


# -- readable text instead of JSON ----------------------------------------------------------
def test_aliases_read_as_arrows_not_json() -> None:
    assert aliases_text({"production": 1, "staging": 2}) == "production → v1, staging → v2"
    assert aliases_text({}) == "–"


def test_an_audit_detail_reads_as_key_value_phrases() -> None:
    text = detail_text({"version": 2, "from_percent": 10.0, "automatic": True, "metrics": {},
                        "previous": {"candidate": 3, "mode": "canary"}, "note": None})
    assert text == ("version: 2 · from percent: 10 · automatic: yes · "
                    "previous: (candidate: 3, mode: canary)")
    assert "{" not in text and "_" not in text
    assert detail_text({"version": 2, "error_rate": 0.0123456}, skip={"version"}) == \
        "error rate: 0.01235"


def _event(action: str, **detail: object) -> DeploymentEvent:
    return DeploymentEvent(action=action, at=AFTERNOON, actor="ui", reason="why not",
                           detail=detail)


@pytest.mark.parametrize(("action", "detail", "sentence"), [
    ("deployment.initial", {"version": 1, "percent": 0.0, "mode": "canary",
                            "previous": {"candidate": None}, "metrics": {}},
     "version 1 deployed as production (100 % of traffic)"),
    ("deployment.candidate", {"version": 3, "percent": 10.0, "mode": "shadow",
                              "previous": {"candidate": 2, "percent": 5.0}, "metrics": {}},
     "version 3 deployed as shadow candidate at 10 %, replacing candidate version 2"),
    ("deployment.percent", {"version": 2, "from_percent": 10.0, "to_percent": 25.0,
                            "metrics": {}},
     "candidate version 2: traffic 10 % → 25 %"),
    ("deployment.promote", {"version": 2, "from_version": 1, "percent": 50.0, "metrics": {}},
     "version 2 promoted to production at 50 % (was version 1)"),
    ("deployment.rollback", {"version": 2, "stable": 1, "automatic": True,
                             "previous": {"candidate": 2}, "metrics": {}},
     "candidate version 2 automatically rolled back: 100 % to version 1"),
])
def test_each_deployment_change_reads_as_a_sentence(action: str, detail: dict,
                                                    sentence: str) -> None:
    said, keys = deployment_change(_event(action, **detail))
    assert said == sentence
    assert detail_text(detail, skip=keys) == "", "nothing said twice, nothing left raw"


def test_deployment_history_keeps_what_the_sentence_does_not_say() -> None:
    frame = deployment_history_frame([_event(
        "deployment.rollback", version=2, stable=1, automatic=True,
        metrics={"requests": 120, "error_rate": 0.25})])
    row = frame.iloc[0].to_dict()
    assert row["when"] == "2026-12-02 16:11:05 UTC"
    assert row["details"] == "metrics: (requests: 120, error rate: 0.25)"
    assert list(frame.columns) == ["when", "change", "by", "why", "details"]


def test_alias_history_is_newest_first_and_readable() -> None:
    events = [AliasEventPublic(alias="production", from_version=None, to_version=1,
                               actor="ui", reason="", at=AFTERNOON),
              AliasEventPublic(alias="production", from_version=1, to_version=2,
                               actor="", reason="better", at=AFTERNOON + timedelta(hours=1))]
    frame = alias_history_frame(events)
    assert frame["change"].tolist() == ["production: version 1 → version 2",
                                        "production set to version 1"]
    assert frame["when"].tolist() == ["2026-12-02 17:11:05 UTC", "2026-12-02 16:11:05 UTC"]
    assert frame["by"].tolist() == ["unknown", "ui"]


# -- the pages -------------------------------------------------------------------------------
def _cells(at: AppTest) -> str:
    return " ".join(d.value.astype(str).to_string() for d in at.dataframe)


def _ancestors_of(kind: str, at: AppTest) -> Iterator[list[str]]:
    """For each element of `kind`, the types of the blocks around it (outermost first)."""
    def walk(node: object, path: list[str]) -> Iterator[list[str]]:
        for child in getattr(node, "children", {}).values():
            if getattr(child, "type", None) == kind:
                yield path
            yield from walk(child, [*path, str(getattr(child, "type", ""))])
    yield from walk(at._tree, [])


def test_home_registry_and_jobs_show_times_with_zone_and_aliases_as_text(wine: Path) -> None:
    at = _app().run()
    at.switch_page("pages/registry.py").run()
    at.text_input[0].set_value("production")
    at.button[0].click().run()
    assert not at.exception
    history = at.dataframe[1].value
    assert history["change"].tolist() == ["production set to version 1"]
    assert history["when"].str.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC").all()
    assert at.dataframe[0].value["created"].str.endswith(" UTC").all()
    at.switch_page("pages/home.py").run()
    assert not at.exception
    models = at.dataframe[0].value
    assert models["aliases"].tolist() == ["production → v1"], "not {'production': 1}"
    assert at.dataframe[1].value["created"].str.endswith(" UTC").all()
    at.switch_page("pages/jobs.py").run()
    assert not at.exception
    assert at.dataframe[0].value["created"].str.endswith(" UTC").all()
    assert "{" not in _cells(at)


def test_deployment_history_reads_as_sentences(two_wines: Path) -> None:
    at = _app().run()
    at.switch_page("pages/deployments.py").run()
    for version in (1, 2):
        at.selectbox[1].set_value(version)
        at.button(key="FormSubmitter:deploy-Deploy").click().run()
    assert _state("wine").candidate == 2
    assert not at.exception
    history = at.dataframe[-1].value
    assert history["change"].tolist() == [
        "version 2 deployed as canary candidate at 10 %",
        "version 1 deployed as production (100 % of traffic)"]
    assert "detail" not in history.columns and "{" not in history.to_string()


def test_chart_and_card_rows_wrap_on_narrow_screens(wine: Path) -> None:
    """Charts sit in grids that drop to one per row below CHART_WIDTH px, not in st.columns
    (which keep their share of the row down to a 640 px window)."""
    at = _app().run()
    for page in ("pages/leaderboard.py", "pages/version.py"):
        at.switch_page(page).run()
        assert not at.exception
        if page.endswith("leaderboard.py"):
            paths = list(_ancestors_of("vega_lite_chart", at))
            assert len(paths) >= 4
            assert all("column" not in p for p in paths), paths
        grids = at.get("grid_container")
        assert grids and all(g.min_column_width >= 150 for g in grids)
        assert max(g.min_column_width for g in grids) >= CHART_WIDTH
        metric_paths = list(_ancestors_of("metric", at))
        assert metric_paths and all("column" not in p for p in metric_paths), metric_paths


def test_every_page_runs_with_the_layout_css_and_no_exception(wine: Path) -> None:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    assert not at.exception
    for page in ("pages/predict.py", "pages/monitor.py", "pages/train.py", "pages/data.py"):
        at.switch_page(page).run()
        assert not at.exception, page
