"""The Monitor and Deployments queries over real telemetry rows, on SQLite and PostgreSQL:
the live series spans the whole window (a burst is one step of it, not the whole chart), the
live score per step comes from fed-back labels, the traffic split starts at the last change,
and a labelled table goes through the REST feedback rule."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from sqlmodel import Session, select

from core.deploy.deployments import deploy, rollback
from core.deploy.feedback import record_feedback
from core.deploy.feedback_table import record_feedback_table, requests_to_label
from core.deploy.metrics import BUCKETS_MS
from core.deploy.split import traffic_split
from core.errors import InvalidDataError, NotFoundError
from core.monitor.series import live_series
from core.store import Database, PredictionLog, RequestInput, ServingStat, utcnow
from tests.factories import register_numeric


def _hist(latency_ms: float, n: int) -> list[int]:
    hist = [0] * (len(BUCKETS_MS) + 1)
    hist[next(i for i, edge in enumerate(BUCKETS_MS) if latency_ms <= edge)] = n
    return hist


def _stat(s: Session, version: int, at, count: int, errors: int = 0,
          latency_ms: float = 3.0) -> None:
    s.add(ServingStat(model_name="churn", version=version, worker="w", at=at, count=count,
                      errors=errors, latency_sum_ms=latency_ms * count,
                      latency_hist=_hist(latency_ms, count)))


def _log(s: Session, rid: str, version: int, predictions: list, actual: list | None = None,
         at=None) -> None:
    s.add(PredictionLog(request_id=rid, model_name="churn", version=version,
                        predictions=predictions, actual=actual, created_at=at or utcnow()))


@pytest.fixture
def churn(backend_db: Database) -> Session:
    with Session(backend_db.engine, expire_on_commit=False) as s:
        register_numeric(s, metrics={"accuracy": 0.8})
        register_numeric(s, seed=1, metrics={"accuracy": 0.9})
        yield s


def test_a_burst_is_one_step_of_a_series_that_spans_the_whole_window(churn: Session) -> None:
    now = utcnow()
    _stat(churn, 1, now - timedelta(minutes=50), 10, errors=1, latency_ms=40)
    _stat(churn, 1, now - timedelta(minutes=10), 20, latency_ms=3)
    _stat(churn, 2, now - timedelta(minutes=10), 5, latency_ms=300)
    _stat(churn, 1, now - timedelta(hours=2), 999)  # before the window
    churn.commit()
    series = live_series("churn", "1h", now=now, session=churn)
    frame = pd.DataFrame([p.model_dump() for p in series.points])
    assert series.step == "1min" and series.metric == "accuracy"
    for version in (1, 2):
        mine = frame[frame["version"] == version].sort_values("at")
        assert len(mine) >= 60, "one point per minute of the hour, traffic or not"
        assert mine["at"].iloc[0] <= series.start + timedelta(minutes=1)
        assert mine["at"].iloc[-1] >= series.end - timedelta(minutes=1)
    v1 = frame[frame["version"] == 1]
    assert v1["requests"].sum() == 30 and (v1["requests"] > 0).sum() == 2
    quiet = v1[v1["requests"] == 0]
    assert quiet["error_rate"].isna().all() and quiet["latency_p95_ms"].isna().all()
    busy = v1[v1["requests"] == 10].iloc[0]
    assert busy["error_rate"] == pytest.approx(0.1)
    assert busy["latency_p50_ms"] == 50 and busy["latency_p95_ms"] == 50  # bucket edge
    assert frame[frame["version"] == 2]["latency_p95_ms"].max() == 500
    assert series.validation == {1: 0.8, 2: 0.9}


def test_the_live_score_per_step_comes_from_fed_back_labels(churn: Session) -> None:
    now = utcnow()
    early, late = now - timedelta(minutes=40), now - timedelta(minutes=5)
    for i, (pred, actual) in enumerate([("yes", "yes"), ("yes", "no"), ("no", "no"),
                                        ("no", "no")]):
        _log(churn, f"a{i}", 1, [pred], [actual], at=early)
    _log(churn, "b0", 1, ["yes", "no"], ["yes", "no"], at=late)  # two records, both right
    _log(churn, "b1", 1, ["yes"], None, at=late)  # never labelled: not scored
    churn.commit()
    series = live_series("churn", "1h", now=now, session=churn)
    scored = [(p.labelled, p.score) for p in series.points if p.labelled]
    assert scored == [(4, 0.75), (2, 1.0)]
    assert all(p.score is None for p in series.points if not p.labelled)


def test_the_traffic_split_starts_at_the_last_change(churn: Session) -> None:
    deploy("churn", 1, 100, session=churn)
    deploy("churn", 2, 10, session=churn)
    _stat(churn, 1, utcnow(), 90)
    _stat(churn, 2, utcnow(), 10)
    churn.commit()
    split = traffic_split("churn", session=churn)
    assert split.change == "candidate" and split.percent == 10
    assert [(v.version, v.role, v.requests, v.share) for v in split.versions] == [
        (1, "stable", 90, 0.9), (2, "candidate", 10, 0.1)]
    rollback("churn", session=churn)
    assert traffic_split("churn", session=churn).versions == [], \
        "the rolled-back candidate's requests are from before the change"
    _stat(churn, 1, utcnow(), 50)
    churn.commit()
    split = traffic_split("churn", session=churn)
    assert split.change == "rollback"
    assert [(v.version, v.role, v.share) for v in split.versions] == [(1, "stable", 1.0)]
    later = traffic_split("churn", now=utcnow() + timedelta(hours=1), session=churn)
    assert later.change is None and later.recent_minutes == 15 and later.versions == []


def test_a_labelled_table_goes_through_the_feedback_rule(churn: Session) -> None:
    for i in range(4):
        _log(churn, f"r{i}", 1, ["yes"])
    _log(churn, "pair", 2, ["yes", "no"])
    _log(churn, "num", 2, [1])
    churn.commit()
    record_feedback("churn", "r0", "no", session=churn)  # labelled before, through the API rule
    table = pd.DataFrame({
        "Request ID": ["r0", "r1", "r1", "nope", "pair", "r2", "num", "r3"],
        "actual": ["yes", "no", "yes", "yes", "yes", "", "1", '["no"]']})
    result = record_feedback_table("churn", table, session=churn)
    assert (result.rows, result.recorded, result.relabelled) == (8, 4, 1)
    assert (result.blank, result.duplicates, result.unknown, result.mismatched) == (1, 1, 1, 1)
    assert result.unknown_ids == ["nope"] and result.mismatched_ids == ["pair"]
    assert result.by_version == {1: 3, 2: 1}
    churn.expire_all()
    stored = {r.request_id: r.actual for r in churn.exec(select(PredictionLog)).all()}
    assert stored == {"r0": ["yes"], "r1": ["yes"], "r2": None, "r3": ["no"],
                      "pair": None, "num": [1]}  # the last r1 row; "1" as the number 1
    with pytest.raises(NotFoundError):  # the single-request rule is the same one
        record_feedback("churn", "nope", "yes", session=churn)
    with pytest.raises(InvalidDataError, match=r"request_id and actual \(or y\)"):
        record_feedback_table("churn", pd.DataFrame({"id": ["r1"], "label": ["no"]}),
                              session=churn)
    by_target = record_feedback_table("churn", pd.DataFrame({"request_id": ["pair"],
                                                             "y": ['["no", "no"]']}),
                                      session=churn)
    assert by_target.recorded == 1 and by_target.actual_column == "y"


def test_requests_to_label_list_recent_answers_with_their_inputs(churn: Session) -> None:
    _log(churn, "old", 1, ["no"], at=utcnow() - timedelta(days=2))
    _log(churn, "new", 1, ["yes"])
    churn.add(RequestInput(request_id="new", model_name="churn", rows=[{"a": 1.0, "b": 2.0}]))
    churn.commit()
    frame = requests_to_label("churn", utcnow() - timedelta(hours=24), session=churn)
    assert frame["request_id"].tolist() == ["new"]
    row = frame.iloc[0]
    assert (row["prediction"], row["a"], row["version"]) == ("yes", 1.0, 1)
    assert pd.isna(row["actual"])
