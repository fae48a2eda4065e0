"""Alerts from real telemetry rows: opened after consecutive bad windows, acting on a canary,
quiet once acknowledged until the condition clears and recurs, and from feedback labels."""

from __future__ import annotations

import http.server
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from app.cli import app
from core.deploy.deployments import deploy, get_state, rollback
from core.deploy.enums import AlertKind, AlertState, Severity
from core.deploy.telemetry import Telemetry
from core.deploy.webhook import post_webhook
from core.errors import WorkbenchError
from core.monitor import alerts as monitor
from core.monitor.alerts import list_alerts, set_config
from core.store import AuditEvent, Database, PredictionLog, utcnow
from core.usecases.alert_actions import acknowledge, check_and_act, monitor_pass, run_monitor
from tests.factories import DATA

runner = CliRunner()


@pytest.fixture
def canary(home: Path, session: Session) -> str:
    for est in ("linear", "hgb"):
        result = runner.invoke(app, ["train", str(DATA / "wine.csv"), "--target", "cultivar",
                                     "--estimator", est])
        assert result.exit_code == 0, result.output
    deploy("wine", 1, 100, session=session)
    deploy("wine", 2, 10, session=session)
    return "wine"


def check(model: str, *, session: Session, **kw) -> list:
    """One window check and what the alerts it opened did, as the monitor pass runs it."""
    return check_and_act(model, session=session, **kw)


def errors(alerts: list) -> list:
    return [a for a in alerts if a.kind == AlertKind.ERROR]


def latency(alerts: list) -> list:
    return [a for a in alerts if a.kind == AlertKind.LATENCY]


def traffic(version: int, ok: int, failed: int, latency_ms: float = 3.0) -> None:
    t = Telemetry(Database())
    for _ in range(ok):
        t.record("wine", version, latency_ms, True, ["class_0"])
    for _ in range(failed):
        t.record("wine", version, latency_ms, False)
    t.flush()


def test_an_error_spike_opens_an_alert_that_rolls_back_the_canary(
        canary: str, session: Session) -> None:
    set_config("wine", rollback_on_alert=True, consecutive=3, session=session)
    traffic(1, 500, 0)
    traffic(2, 80, 60)  # the candidate fails 43 % of its requests (over min_requests: 100)
    now = utcnow()
    assert errors(check("wine", now=now, session=session)) == []
    assert errors(check("wine", now=now + timedelta(seconds=30), session=session)) == []
    (alert,) = errors(check("wine", now=now + timedelta(seconds=60), session=session))
    assert (alert.kind, alert.version, alert.severity) == (AlertKind.ERROR, 2,
                                                           Severity.CRITICAL)
    state = get_state("wine", session=session)
    assert state.candidate is None and state.stable == 1
    (row,) = errors(list_alerts("wine", session=session))
    assert "rolled back candidate 2" in row.action


def test_an_error_alert_on_a_canary_rolls_it_back_as_the_guard_rails_would(
        canary: str, session: Session) -> None:
    """Without opting in to alert actions: a candidate failing every request used to keep its
    10 % with a critical ERROR alert open. A slow one (LATENCY) keeps it, as configured."""
    set_config("wine", consecutive=1, max_p99_ms=50, session=session)
    traffic(2, 120, 0, latency_ms=400)
    assert latency(check("wine", session=session))
    assert get_state("wine", session=session).candidate == 2
    traffic(2, 0, 120)
    (alert,) = errors(check("wine", now=utcnow() + timedelta(seconds=30), session=session))
    assert alert.version == 2
    state = get_state("wine", session=session)
    assert state.candidate is None and state.stable == 1
    (row,) = errors(list_alerts("wine", session=session))
    assert row.action == "rolled back candidate 2"
    event = session.exec(select(AuditEvent).where(AuditEvent.action == "deployment.rollback")
                         ).one()
    assert (event.actor, event.detail["automatic"], event.detail["version"]) == \
        ("alert", True, 2)
    assert f"alert {alert.id}" in event.reason


def test_an_error_alert_within_the_canarys_own_rail_leaves_it_running(
        canary: str, session: Session) -> None:
    """The ERROR alert acts as the guard rails would: with its own rail (--max-error-rate 0.9)
    a canary failing half its requests keeps its share, though the alert opens."""
    rollback("wine", session=session)
    deploy("wine", 2, 10, guard_rails={"max_error_rate": 0.9}, session=session)
    set_config("wine", consecutive=1, session=session)
    traffic(2, 60, 60)
    (alert,) = errors(check("wine", session=session))
    assert alert.version == 2 and get_state("wine", session=session).candidate == 2


def test_a_window_counts_once_however_many_processes_check_it(
        canary: str, session: Session) -> None:
    """Job workers and server processes all check every 30 s: checks of the same window (a
    second checker a moment later) must not count as another bad window."""
    set_config("wine", consecutive=2, max_p99_ms=50, session=session)
    traffic(1, 200, 0, latency_ms=400)
    now = utcnow()
    for offset in (0, 1, 5, 12):  # four checkers, one window
        assert latency(check("wine", now=now + timedelta(seconds=offset),
                             session=session)) == []
    (alert,) = latency(check("wine", now=now + timedelta(seconds=30),
                             session=session))  # the second window
    assert alert.consecutive == 2


def test_an_acknowledged_alert_stays_quiet_until_it_clears_and_recurs(
        canary: str, session: Session) -> None:
    set_config("wine", consecutive=2, max_p99_ms=50, session=session)
    traffic(1, 200, 0, latency_ms=400)  # stable is slow
    now = utcnow()
    check("wine", now=now, session=session)
    (first,) = latency(check("wine", now=now + timedelta(seconds=30), session=session))
    acked = acknowledge(first.id, actor="ana", session=session)
    assert acked.state == AlertState.ACKNOWLEDGED and acked.acknowledged_at is not None
    for i in range(3):  # still bad: no new alert while acknowledged
        assert latency(check("wine", now=now + timedelta(seconds=60 + 30 * i),
                             session=session)) == []
    later = now + timedelta(minutes=10)  # no traffic in the window: the condition cleared
    check("wine", now=later, session=session)
    assert list_alerts("wine", session=session) == []
    resolved = list_alerts("wine", (AlertState.RESOLVED,), session=session)
    assert [a.id for a in latency(resolved)] == [first.id]
    traffic(1, 200, 0, latency_ms=400)
    check("wine", now=utcnow(), session=session)
    (second,) = latency(check("wine", now=utcnow() + timedelta(seconds=30), session=session))
    assert second.id != first.id
    with pytest.raises(WorkbenchError, match="only open alerts"):
        acknowledge(first.id, session=session)


def test_the_alert_state_table_allows_only_its_moves() -> None:
    """The lifecycle as data, like the job ledger's: a resolved alert never reopens (a
    recurrence is a new alert) and nothing skips back to pending."""
    from core.deploy.enums import ALERT_TRANSITIONS, UNRESOLVED

    assert UNRESOLVED == (AlertState.PENDING, AlertState.OPEN, AlertState.ACKNOWLEDGED)
    assert ALERT_TRANSITIONS[AlertState.RESOLVED] == frozenset()
    assert not any(AlertState.PENDING in to for to in ALERT_TRANSITIONS.values())
    assert AlertState.OPEN.can_become(AlertState.ACKNOWLEDGED)
    assert not AlertState.ACKNOWLEDGED.can_become(AlertState.OPEN)


def test_rollback_on_alert_covers_the_windowed_kinds_only(canary: str, session: Session) -> None:
    """`rollback_on_alert` once filtered on a list of every kind, so it filtered nothing: it
    meant "the monitor's own alerts on the candidate". GUARD (the rails cannot judge, which
    says nothing against the candidate) is the kind it leaves alone; a LATENCY alert on the
    candidate rolls it back."""
    from core.usecases.alert_actions import act

    assert [k for k in AlertKind if k.windowed] == [AlertKind.DRIFT, AlertKind.PERFORMANCE,
                                                    AlertKind.ERROR, AlertKind.LATENCY]
    set_config("wine", consecutive=1, max_p99_ms=50, rollback_on_alert=True, session=session)
    from core.deploy import guard_alert

    guard = guard_alert.report("wine", 2, "rails broken", session=session)
    assert act(guard, session=session) == []
    assert get_state("wine", session=session).candidate == 2
    traffic(2, 120, 0, latency_ms=400)
    (alert,) = latency(check("wine", session=session))
    assert alert.version == 2 and alert.action == "rolled back candidate 2"
    assert get_state("wine", session=session).candidate is None


def test_an_accuracy_drop_from_feedback_raises_a_performance_alert(
        canary: str, session: Session) -> None:
    set_config("wine", consecutive=1, min_requests=20, session=session)
    for i in range(40):
        session.add(PredictionLog(request_id=f"r{i}", model_name="wine", version=1,
                                  predictions=["class_0"],
                                  actual=["class_0" if i < 10 else "class_1"]))
    session.commit()
    traffic(1, 100, 0)
    (alert,) = [a for a in check("wine", window="1h", session=session)
                if a.kind == AlertKind.PERFORMANCE]
    assert "live accuracy 25.0%" in alert.message


def test_live_scores_come_from_the_metric_catalogue(canary: str, session: Session) -> None:
    """Accuracy and F1 of fed-back labels are the catalogue's (core.automl.metrics), the
    same numbers a version's validation shows; labels sent as JSON match as text."""
    from sklearn.metrics import accuracy_score, f1_score

    from core.deploy.scores import live_scores
    from core.monitor.live import accuracy

    preds = ["class_0", "class_1", "class_2", "class_1"] * 5
    truth = ["class_0", "class_1", "class_1", "class_2"] * 5
    for i, (p, a) in enumerate(zip(preds, truth, strict=True)):
        session.add(PredictionLog(request_id=f"s{i}", model_name="wine", version=2,
                                  predictions=[p], actual=[a]))
    session.commit()
    scores = accuracy("wine", "multiclass", "1h", session=session)["2"]
    assert scores == {"n": 20, "accuracy": accuracy_score(truth, preds),
                      "f1": f1_score(truth, preds, average="macro")}
    assert live_scores("binary", [1, 0, 1], ["1", "0", "0"])["accuracy"] == 2 / 3
    assert live_scores("regression", [1.5, 3.0], [2, 3]) == {
        "n": 2, "rmse": pytest.approx(0.5 / 2 ** 0.5), "mae": 0.25}


def test_webhooks_are_http_only_and_never_follow_redirects(
        canary: str, db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKBENCH_WEBHOOK_ALLOW_PRIVATE", "1")  # the receiver is local
    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            hits.append(self.path)
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/hook"
        assert post_webhook(url, {"x": 1}) == 302
        assert hits == ["/hook"]  # one request: the redirect was not followed
    finally:
        server.shutdown()
    with pytest.raises(WorkbenchError, match="http:// or https://"):
        set_config("wine", webhook_url="file:///etc/passwd", session=Session(db.engine))


def test_a_shifted_prediction_mix_raises_a_drift_alert(canary: str, session: Session) -> None:
    set_config("wine", consecutive=1, min_requests=50, session=session)
    t = Telemetry(Database())
    for _ in range(300):  # training predicted three classes; live traffic sees only one
        t.record("wine", 1, 2.0, True, ["class_2"])
    t.flush()
    opened = check("wine", session=session)
    (alert,) = [a for a in opened if a.kind == AlertKind.DRIFT]
    assert alert.feature == monitor.PREDICTION and alert.value > 0.2


def test_compaction_keeps_the_totals_in_fewer_rows(canary: str, session: Session) -> None:
    from core.monitor.live import compact
    from core.monitor.live import traffic as live_traffic
    from core.store import ServingStat

    for _ in range(5):
        traffic(1, 20, 1)
    before = live_traffic("wine", "24h", session=session).versions["1"]
    removed = compact(older_than=timedelta(0), now=utcnow() + timedelta(minutes=2),
                      session=session)
    assert removed >= 4
    after = live_traffic("wine", "24h", now=utcnow() + timedelta(minutes=2),
                         session=session).versions["1"]
    assert (after.requests, after.errors) == (before.requests, before.errors) == (105, 5)
    assert len(session.exec(select(ServingStat).where(ServingStat.version == 1)).all()) == 1


def test_the_monitor_loop_raises_alerts_without_posing_as_a_job_worker(
        canary: str, db: Database, session: Session) -> None:
    """What `workbench serve` runs beside the server (`worker --monitor-only`): alerts open
    with no job worker alive, and it registers none, so queued jobs still start one."""
    from core.jobs.worker import live_workers

    set_config("wine", consecutive=1, max_p99_ms=50, session=session)
    traffic(1, 200, 0, latency_ms=400)
    stop = threading.Event()
    loop = threading.Thread(target=run_monitor, args=(stop, db))
    loop.start()
    try:
        deadline = time.monotonic() + 20
        while not latency(list_alerts("wine", session=session)) and \
                time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        loop.join(timeout=10)
    (alert,) = latency(list_alerts("wine", session=session))
    assert alert.state == AlertState.OPEN and alert.version == 1
    assert live_workers(session=session) == []
    assert not loop.is_alive()  # stops when told


def test_one_process_at_a_time_runs_the_monitor_pass(backend: str,
                                                     backend_db: Database) -> None:
    """Servers and job workers all try every 30 s; on PostgreSQL the others skip the round
    (an advisory lock), on SQLite writers are serialised anyway."""
    other = Database()  # another process's store
    try:
        with other.exclusive("workbench-monitor") as first:
            assert first
            with backend_db.exclusive("workbench-monitor") as second:
                assert second == (backend == "sqlite")
            if backend == "postgres":
                assert monitor_pass(backend_db) == []  # skipped while the other holds it
        with backend_db.exclusive("workbench-monitor") as again:
            assert again  # released on exit
    finally:
        other.dispose()


def test_a_version_without_a_validation_score_is_not_judged_on_accuracy(
        canary: str, session: Session) -> None:
    """An imported model may carry no validation accuracy: feedback alone raises no
    PERFORMANCE verdict (and the check does not fail)."""
    from core.store import ModelVersion, RegisteredModel

    mv = session.exec(select(ModelVersion).join(RegisteredModel).where(
        RegisteredModel.name == "wine", ModelVersion.version == 1)).one()
    mv.metrics = {}
    session.add(mv)
    session.commit()
    set_config("wine", consecutive=1, min_requests=20, session=session)
    for i in range(40):
        session.add(PredictionLog(request_id=f"r{i}", model_name="wine", version=1,
                                  predictions=["class_0"], actual=["class_1"]))
    session.commit()
    traffic(1, 100, 0)
    assert [a for a in check("wine", window="1h", session=session)
            if a.kind == AlertKind.PERFORMANCE] == []
