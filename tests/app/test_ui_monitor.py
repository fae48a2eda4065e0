"""AppTest of defect 14.10 (Monitor and Deployments) and the drift items of 14.7: charts over
the whole window, live accuracy from feedback labels uploaded as a table, the traffic split
since the last change (a rollback is not followed by the old split), open alerts on
Deployments and Home, drift p-values and effect sizes a person can read.

Each test works on a copy of a wine home built once per module (as tests/app/test_ui.py
does), with traffic replayed through the real router by the simulator."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from core.data.datasets import ingest_path
from core.deploy.deployments import deploy
from core.deploy.simulator import simulate
from core.store import Alert, Database, PredictionLog, RequestInput, utcnow
from tests.app.test_ui import _app, _train_wine
from tests.factories import WINE, built_home, copy_home, store_session


@pytest.fixture(scope="module")
def wine_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One search of wine: version 1."""
    with built_home(tmp_path_factory, "wine") as path:
        _train_wine()
    return path


@pytest.fixture(scope="module")
def two_wines_home(tmp_path_factory: pytest.TempPathFactory, wine_home: Path) -> Path:
    """Two searches of wine: versions 1 and 2."""
    with built_home(tmp_path_factory, "two_wines", start=wine_home) as path:
        _train_wine()
    return path


@pytest.fixture
def wine(home: Path, wine_home: Path) -> Path:
    return copy_home(wine_home, home)


@pytest.fixture
def two_wines(home: Path, two_wines_home: Path) -> Path:
    return copy_home(two_wines_home, home)


def _serve(n: int = 300) -> None:
    """Wine version 1 in production, `n` requests replayed through the router."""
    with store_session() as s:
        deploy("wine", 1, 100, session=s)
    db = Database()
    try:
        simulate("wine", pd.read_csv(WINE), n, db=db)
    finally:
        db.dispose()


def _labelled() -> pd.DataFrame:
    """The served requests with their true cultivar (from the logged input rows)."""
    with store_session() as s:
        logs = s.exec(select(PredictionLog).where(PredictionLog.model_name == "wine")).all()
        inputs = {r.request_id: r.rows for r in s.exec(select(RequestInput)).all()}
    # the simulator replays whole rows of wine.csv, its target included
    return pd.DataFrame([{"request_id": log.request_id,
                          "actual": inputs[log.request_id][0]["cultivar"]} for log in logs])


def _specs(at: AppTest) -> list[dict]:
    """Each chart's Vega-Lite spec, with the rows Streamlit sends beside it (Arrow) put back
    under "values"."""
    out = []
    for chart in at.get("vega_lite_chart"):
        spec = json.loads(chart.proto.spec)
        frames = [pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets]
        if chart.proto.data.data:
            frames.append(pa.ipc.open_stream(chart.proto.data.data).read_pandas())
        spec["values"] = [row for f in frames for row in f.to_dict("records")]
        out.append(spec)
    return out


def _dump(anything: object) -> str:
    return json.dumps(anything, default=str)


def _values(spec: dict) -> list[dict]:
    return spec["values"]


def _texts(at: AppTest) -> str:
    return " ".join(str(e.value) for kind in ("info", "markdown", "caption", "success",
                                              "warning", "error") for e in getattr(at, kind))


def _monitor() -> AppTest:
    at = _app().run()
    at.switch_page("pages/monitor.py").run()
    assert not at.exception
    return at


def test_monitor_charts_cover_the_whole_window_not_one_burst(wine: Path) -> None:
    _serve()
    at = _monitor()
    requests = next(s for s in _specs(at) if "requests" in _dump(s.get("encoding", {})))
    points = _values(requests)
    assert len(points) >= 60, "a point per minute of the hour, not the one minute of traffic"
    assert sum(p["requests"] for p in points) == 300
    assert "p95" in _dump([_values(s) for s in _specs(at)]), "latency p50 and p95"


def test_feedback_labels_uploaded_as_a_table_give_live_accuracy(wine: Path) -> None:
    _serve()
    at = _monitor()
    assert not any("live accuracy" in _dump(s["encoding"]) for s in _specs(at)
                   if "encoding" in s)
    bad = pd.DataFrame({"id": ["x"], "label": ["class_0"]}).to_csv(index=False)
    at.file_uploader[0].upload("labels.csv", bad.encode(), "text/csv")
    at.button(key="FormSubmitter:feedback-Record true values").click().run()
    assert not at.exception
    assert "request_id and actual (or cultivar)" in at.error[0].value

    labels = _labelled()
    extra = pd.DataFrame({"request_id": [labels["request_id"].iloc[0], "not-a-request"],
                          "actual": [labels["actual"].iloc[0], "class_1"]})
    table = pd.concat([labels, extra], ignore_index=True)  # one duplicate, one unknown id
    at.file_uploader[0].upload("labels.csv", table.to_csv(index=False).encode(), "text/csv")
    at.button(key="FormSubmitter:feedback-Record true values").click().run()
    assert not at.exception
    assert f"Recorded the true values of {len(labels)} of {len(table)} rows" in \
        at.success[-1].value
    warnings = " ".join(w.value for w in at.warning)
    assert "1 request id(s) are not predictions of wine" in warnings and "not-a-request" in \
        warnings
    assert "1 row(s) repeat a request id" in warnings
    at.run()
    summary = next(d.value for d in at.dataframe if "latency_p95_ms" in d.value.columns)
    assert summary["labelled"].sum() == len(labels) and summary["live accuracy"].iloc[0] > 0.5
    accuracy = next(s for s in _specs(at) if "live accuracy" in _dump(s))
    assert any(p.get("score") is not None for p in _values(accuracy))
    assert "validation" in _dump(accuracy), "the validation score as a reference line"


def test_requests_to_label_can_be_downloaded(wine: Path) -> None:
    _serve(50)
    at = _monitor()
    (button,) = [b for b in at.get("download_button") if "to label" in b.proto.label]
    assert "50 requests" in button.proto.label


def test_drift_p_values_and_effect_sizes_are_readable(wine: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(WINE)
    frame["proline"] = frame["proline"] * 1e6  # a unit change: an absurd effect size
    frame.to_csv(tmp_path / "units.csv", index=False)
    with store_session() as s:
        ds = ingest_path(tmp_path / "units.csv", session=s,
                         name="wine in other units").dataset
    at = _monitor()
    batch = next(sb for sb in at.selectbox if sb.label == "Batch")
    batch.set_value(ds.id)
    at.button(key="FormSubmitter:drift-Check drift").click().run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "p_value" in d.value.columns)
    p = table.set_index("feature")["p_value"]
    assert p["proline"] == "< 0.0001"
    assert all(len(v) <= 8 for v in p), "3 significant digits, never 80 zeros"
    chart = next(s for s in _specs(at) if "effect size" in _dump(s))
    domain = _dump(chart)
    assert "18000000" not in domain
    shown = [row["shown"] for row in _values(chart)]
    assert max(shown) <= 1.0
    proline = next(row for row in _values(chart) if row["feature"] == "proline")
    assert proline["clipped"] and float(proline["effect size"].replace(",", "")) > 1000


def test_after_a_rollback_the_split_is_not_the_old_one(two_wines: Path) -> None:
    with store_session() as s:
        deploy("wine", 1, 100, session=s)
        deploy("wine", 2, 50, session=s)
    db = Database()
    try:
        simulate("wine", pd.read_csv(WINE), 400, db=db)
    finally:
        db.dispose()
    at = _app().run()
    at.switch_page("pages/deployments.py").run()
    split = next(d.value for d in at.dataframe if "role" in d.value.columns)
    assert set(split["role"]) == {"stable", "candidate"}
    assert "since the last change (new candidate at" in _texts(at)
    next(b for b in at.button if b.label == "Rollback").click().run()
    next(b for b in at.button if b.label == "Confirm rollback").click().run()
    assert not at.exception
    assert not any("role" in d.value.columns for d in at.dataframe), \
        "the candidate's share from before the rollback is not shown as live"
    assert "No traffic since the last change (rollback at" in _texts(at)
    at.button(key="FormSubmitter:simulate-Run simulator").click().run()
    assert not at.exception
    split = next(d.value for d in at.dataframe if "role" in d.value.columns)
    assert split["role"].tolist() == ["stable"] and split["share"].tolist() == [1.0]


@pytest.mark.parametrize("page_file", ["pages/home.py", "pages/deployments.py"])
def test_open_alerts_show_on_home_and_deployments_with_a_link_to_monitor(
        wine: Path, page_file: str) -> None:
    with store_session() as s:
        deploy("wine", 1, 100, session=s)
        s.add(Alert(model_name="wine", version=1, kind="ERROR", severity="critical",
                    state="open", message="wine:1 error rate 40.0% > 5.0%",
                    opened_at=utcnow()))
        s.add(Alert(model_name="wine", version=1, kind="LATENCY", state="acknowledged",
                    message="wine:1 p99 latency 2000 ms > 1000 ms", opened_at=utcnow()))
        s.commit()
    at = _app().run()
    if page_file != "pages/home.py":
        at.switch_page(page_file).run()
    assert not at.exception
    assert "1 open alert" in " ".join(w.value for w in at.warning)
    listed = next(d.value for d in at.dataframe if "message" in d.value.columns)
    assert listed["message"].tolist() == ["wine:1 error rate 40.0% > 5.0%"]
    links = [(p.proto.page, p.proto.query_string) for p in at.get("page_link")]
    assert any("monitor" in pg and "model=wine" in q for pg, q in links), links
