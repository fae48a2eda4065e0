"""The Deployments page's A/B verdict: the line the scorecard gives, the figures, and the
interval chart, for a canary with labelled feedback; nothing to judge without a candidate."""

from __future__ import annotations

from pathlib import Path

from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest

from core.deploy import deployments as dep
from core.store import PredictionLog
from tests.factories import ROOT, register_numeric, store_session


def _page() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60).run()
    at.switch_page("pages/deployments.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _labelled(s, version: int, hits: int, misses: int) -> None:
    for i, p in enumerate(["yes"] * hits + ["no"] * misses):
        s.add(PredictionLog(request_id=f"v{version}-{i}", model_name="churn", version=version,
                            predictions=[p], actual=["yes"]))
    s.commit()


def test_the_page_says_the_candidate_is_better_with_its_interval(home: Path) -> None:
    with store_session() as s:
        register_numeric(s)
        register_numeric(s, seed=1)
        dep.deploy("churn", 1, session=s)
        dep.deploy("churn", 2, 20, session=s)
        _labelled(s, 1, 30, 20)
        _labelled(s, 2, 48, 2)
    at = _page()
    (line,) = [e.value for e in at.success if e.value.startswith("Version")]
    assert line.startswith("Version 2 (candidate) is better: accuracy 96.0% (candidate) vs "
                           "60.0% (stable)") and "95% interval [+" in line
    cards = {m.label: m.value for m in at.metric}
    assert (cards["Stable 1: accuracy"], cards["Candidate 2: accuracy"],
            cards["Difference (candidate − stable)"]) == ("60.0%", "96.0%", "+36.0 pts")
    drawn = [row for c in at.get("vega_lite_chart") for d in c.proto.datasets
             for row in convert_arrow_bytes_to_pandas_df(d.data.data).to_dict("records")]
    (interval,) = [r for r in drawn if "difference" in r]
    assert interval["difference"] == 36.0 and 0 < interval["low"] < 36 < interval["high"]


def test_too_few_labels_show_how_many_more(home: Path) -> None:
    with store_session() as s:
        register_numeric(s)
        register_numeric(s, seed=1)
        dep.deploy("churn", 1, session=s)
        dep.deploy("churn", 2, 20, session=s, mode="shadow")
        for i in range(12):  # 12 requests scored by both and labelled
            s.add(PredictionLog(request_id=f"r{i}", model_name="churn", version=1,
                                predictions=["yes"], shadow_version=2,
                                shadow_predictions=["no"], actual=["yes"]))
        s.commit()
    at = _page()
    assert any(i.value.startswith("Not enough labels yet: 18 more needed") for i in at.info)
    (bar,) = [p for p in at.progress if "labelled" in p.proto.text]
    assert bar.value == 40 and bar.proto.text.startswith("12 of 30 labelled")


def test_no_candidate_no_verdict(home: Path) -> None:
    with store_session() as s:
        register_numeric(s)
        dep.deploy("churn", 1, session=s)
    at = _page()
    assert any("No candidate: deploy a version" in c.value for c in at.caption)
    assert not [e for e in at.success if "better" in e.value]
