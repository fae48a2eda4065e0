"""Alerts from real telemetry rows: opened after consecutive bad windows, acting on a canary,
quiet once acknowledged until the condition clears and recurs, and from feedback labels."""

from __future__ import annotations

import http.server
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from app.cli import app
from core.deploy import deploy, get_state
from core.deploy.telemetry import Telemetry
from core.errors import WorkbenchError
from core.monitor.alerts import acknowledge, check, list_alerts, post_webhook, set_config
from core.store import PredictionLog, session_scope, utcnow
from tests.factories import DATA

runner = CliRunner()


@pytest.fixture
def canary(home: Path) -> str:
    for est in ("linear", "hgb"):
        result = runner.invoke(app, ["train", str(DATA / "wine.csv"), "--target", "cultivar",
                                     "--estimator", est])
        assert result.exit_code == 0, result.output
    deploy("wine", 1, 100)
    deploy("wine", 2, 10)
    return "wine"


def errors(alerts: list) -> list:
    return [a for a in alerts if a.kind == "ERROR"]


def latency(alerts: list) -> list:
    return [a for a in alerts if a.kind == "LATENCY"]


def traffic(version: int, ok: int, failed: int, latency_ms: float = 3.0) -> None:
    t = Telemetry()
    for _ in range(ok):
        t.record("wine", version, latency_ms, True, ["class_0"])
    for _ in range(failed):
        t.record("wine", version, latency_ms, False)
    t.flush()


def test_an_error_spike_opens_an_alert_that_rolls_back_the_canary(canary: str) -> None:
    set_config("wine", rollback_on_alert=True, consecutive=3)
    traffic(1, 500, 0)
    traffic(2, 40, 30)  # the candidate fails 43 % of its requests
    now = utcnow()
    assert errors(check("wine", now=now)) == []
    assert errors(check("wine", now=now + timedelta(seconds=30))) == []
    (alert,) = errors(check("wine", now=now + timedelta(seconds=60)))
    assert (alert.kind, alert.version, alert.severity) == ("ERROR", 2, "critical")
    state = get_state("wine")
    assert state.candidate is None and state.stable == 1
    (row,) = errors(list_alerts("wine"))
    assert "rolled back candidate 2" in row.action


def test_an_error_alert_on_a_canary_rolls_it_back_as_the_guard_rails_would(
        canary: str) -> None:
    """Without opting in to alert actions: a candidate failing every request used to keep its
    10 % with a critical ERROR alert open. A slow one (LATENCY) keeps it, as configured."""
    from sqlmodel import select

    from core.store import AuditEvent

    set_config("wine", consecutive=1, max_p99_ms=50)
    traffic(2, 60, 0, latency_ms=400)
    assert latency(check("wine")) and get_state("wine").candidate == 2
    traffic(2, 0, 60)
    (alert,) = errors(check("wine", now=utcnow() + timedelta(seconds=30)))
    assert alert.version == 2
    state = get_state("wine")
    assert state.candidate is None and state.stable == 1
    (row,) = errors(list_alerts("wine"))
    assert row.action == "rolled back candidate 2"
    with session_scope() as s:
        event = s.exec(select(AuditEvent).where(AuditEvent.action == "deployment.rollback")
                       ).one()
    assert (event.actor, event.detail["automatic"], event.detail["version"]) == \
        ("alert", True, 2)
    assert f"alert {alert.id}" in event.reason


def test_an_error_alert_within_the_canarys_own_rail_leaves_it_running(canary: str) -> None:
    """The ERROR alert acts as the guard rails would: with its own rail (--max-error-rate 0.9)
    a canary failing half its requests keeps its share, though the alert opens."""
    from core.deploy import deployments as dep

    dep.rollback("wine")
    deploy("wine", 2, 10, guard_rails={"max_error_rate": 0.9})
    set_config("wine", consecutive=1)
    traffic(2, 60, 60)
    (alert,) = errors(check("wine"))
    assert alert.version == 2 and get_state("wine").candidate == 2


def test_a_window_counts_once_however_many_processes_check_it(canary: str) -> None:
    """Job workers and server processes all check every 30 s: checks of the same window (a
    second checker a moment later) must not count as another bad window."""
    set_config("wine", consecutive=2, max_p99_ms=50)
    traffic(1, 200, 0, latency_ms=400)
    now = utcnow()
    for offset in (0, 1, 5, 12):  # four checkers, one window
        assert latency(check("wine", now=now + timedelta(seconds=offset))) == []
    (alert,) = latency(check("wine", now=now + timedelta(seconds=30)))  # the second window
    assert alert.consecutive == 2


def test_an_acknowledged_alert_stays_quiet_until_it_clears_and_recurs(canary: str) -> None:
    set_config("wine", consecutive=2, max_p99_ms=50)
    traffic(1, 200, 0, latency_ms=400)  # stable is slow
    now = utcnow()
    check("wine", now=now)
    (first,) = latency(check("wine", now=now + timedelta(seconds=30)))
    acknowledge(first.id, actor="ana")
    for i in range(3):  # still bad: no new alert while acknowledged
        assert latency(check("wine", now=now + timedelta(seconds=60 + 30 * i))) == []
    later = now + timedelta(minutes=10)  # no traffic in the window: the condition cleared
    check("wine", now=later)
    assert list_alerts("wine") == []
    traffic(1, 200, 0, latency_ms=400)
    check("wine", now=utcnow())
    (second,) = latency(check("wine", now=utcnow() + timedelta(seconds=30)))
    assert second.id != first.id
    with pytest.raises(WorkbenchError, match="only open alerts"):
        acknowledge(first.id)


def test_an_accuracy_drop_from_feedback_raises_a_performance_alert(canary: str) -> None:
    set_config("wine", consecutive=1, min_requests=20)
    with session_scope() as s:
        for i in range(40):
            s.add(PredictionLog(request_id=f"r{i}", model_name="wine", version=1,
                                predictions=["class_0"],
                                actual=["class_0" if i < 10 else "class_1"]))
    traffic(1, 100, 0)
    (alert,) = [a for a in check("wine", window="1h") if a.kind == "PERFORMANCE"]
    assert "live accuracy 25.0%" in alert.message


def test_webhooks_are_http_only_and_never_follow_redirects(
        canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
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
        set_config("wine", webhook_url="file:///etc/passwd")


def test_a_shifted_prediction_mix_raises_a_drift_alert(canary: str) -> None:
    set_config("wine", consecutive=1, min_requests=50)
    t = Telemetry()
    for _ in range(300):  # training predicted three classes; live traffic sees only one
        t.record("wine", 1, 2.0, True, ["class_2"])
    t.flush()
    opened = check("wine")
    (alert,) = [a for a in opened if a.kind == "DRIFT"]
    assert alert.feature == "__prediction__" and alert.value > 0.2


def test_compaction_keeps_the_totals_in_fewer_rows(canary: str) -> None:
    from sqlmodel import select

    from core.monitor.live import compact
    from core.monitor.live import traffic as live_traffic
    from core.store import ServingStat

    for _ in range(5):
        traffic(1, 20, 1)
    before = live_traffic("wine", "24h")["versions"]["1"]
    removed = compact(older_than=timedelta(0), now=utcnow() + timedelta(minutes=2))
    assert removed >= 4
    after = live_traffic("wine", "24h", now=utcnow() + timedelta(minutes=2))["versions"]["1"]
    assert (after["requests"], after["errors"]) == (before["requests"], before["errors"]) \
        == (105, 5)
    with session_scope() as s:
        assert len(s.exec(select(ServingStat).where(ServingStat.version == 1)).all()) == 1


def test_the_monitor_loop_raises_alerts_without_posing_as_a_job_worker(canary: str) -> None:
    """What `workbench serve` runs beside the server (`worker --monitor-only`): alerts open
    with no job worker alive, and it registers none, so queued jobs still start one."""
    from core.jobs.worker import live_workers
    from core.monitor.alerts import run_monitor

    set_config("wine", consecutive=1, max_p99_ms=50)
    traffic(1, 200, 0, latency_ms=400)
    stop = threading.Event()
    loop = threading.Thread(target=run_monitor, args=(stop,))
    loop.start()
    try:
        deadline = time.monotonic() + 20
        while not latency(list_alerts("wine")) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        loop.join(timeout=10)
    (alert,) = latency(list_alerts("wine"))
    assert alert.state == "open" and alert.version == 1
    from core.store import Database

    db = Database()
    with db.session() as s:
        assert live_workers(session=s) == []
    db.dispose()
    assert not loop.is_alive()  # stops when told


def test_one_process_at_a_time_runs_the_monitor_pass(backend: str) -> None:
    """Servers and job workers all try every 30 s; on PostgreSQL the others skip the round
    (an advisory lock), on SQLite writers are serialised anyway."""
    from core.monitor.alerts import monitor_pass
    from core.store import exclusive

    with exclusive("workbench-monitor") as first:
        assert first
        with exclusive("workbench-monitor") as second:  # another connection: another process
            assert second == (backend == "sqlite")
        if backend == "postgres":
            assert monitor_pass() == []  # skipped while the other holds it
    with exclusive("workbench-monitor") as again:
        assert again  # released on exit


def test_a_version_without_a_validation_score_is_not_judged_on_accuracy(canary: str) -> None:
    """An imported model may carry no validation accuracy: feedback alone raises no
    PERFORMANCE verdict (and the check does not fail)."""
    from sqlmodel import select

    from core.store import ModelVersion, RegisteredModel

    with session_scope() as s:
        mv = s.exec(select(ModelVersion).join(RegisteredModel).where(
            RegisteredModel.name == "wine", ModelVersion.version == 1)).one()
        mv.metrics = {}
        s.add(mv)
    set_config("wine", consecutive=1, min_requests=20)
    with session_scope() as s:
        for i in range(40):
            s.add(PredictionLog(request_id=f"r{i}", model_name="wine", version=1,
                                predictions=["class_0"], actual=["class_1"]))
    traffic(1, 100, 0)
    assert [a for a in check("wine", window="1h") if a.kind == "PERFORMANCE"] == []
