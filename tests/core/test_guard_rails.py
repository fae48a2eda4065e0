"""Guard rails: only finite, in-range values are accepted (the error names the field), and
one model whose stored rails are broken cannot stop the guard loop for the others."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import update
from sqlmodel import Session, select

from core.deploy import deployments as dep
from core.deploy import guard_alert
from core.deploy.enums import AlertKind, AlertState, GuardAction
from core.deploy.rails import DEFAULT_GUARD_RAILS, GuardRails
from core.deploy.service import Serving
from core.store import Alert, Database, Deployment, RegisteredModel
from tests.factories import record, register


@pytest.fixture
def bs(backend_db: Database) -> Iterator[Session]:
    """A session on the store of `backend` (SQLite, then PostgreSQL)."""
    with Session(backend_db.engine, expire_on_commit=False) as s:
        yield s


BAD = [({"max_error_rate": -1}, "guard_rails.max_error_rate"),
       ({"max_error_rate": 1.5}, "guard_rails.max_error_rate"),
       ({"max_error_rate": math.nan}, "guard_rails.max_error_rate"),
       ({"max_p99_ms": -100}, "guard_rails.max_p99_ms"),
       ({"max_p99_ms": math.inf}, "guard_rails.max_p99_ms"),
       ({"min_requests": 1e308}, "guard_rails.min_requests"),
       ({"min_requests": math.inf}, "guard_rails.min_requests"),
       ({"min_requests": 10**400}, "guard_rails.min_requests"),
       ({"min_requests": 20.5}, "guard_rails.min_requests"),
       ({"min_requests": 0}, "guard_rails.min_requests"),
       ({"min_requests": "100"}, "guard_rails.min_requests"),
       ({"min_requests": True}, "guard_rails.min_requests"),
       ({"max_errors": 0.1}, "Unknown guard rails: max_errors")]


@pytest.mark.parametrize(("rails", "named"), BAD)
def test_bad_guard_rails_are_refused_naming_the_field(rails: dict, named: str) -> None:
    with pytest.raises(dep.InvalidRequestError, match=named.replace(".", r"\.")):
        dep.check_guard_rails(rails)


def test_good_guard_rails_come_back_as_clean_numbers() -> None:
    assert dep.check_guard_rails({"max_error_rate": 0, "max_p99_ms": 250,
                                  "min_requests": 20.0}) == \
        {"max_error_rate": 0.0, "max_p99_ms": 250.0, "min_requests": 20}
    assert dep.check_guard_rails(DEFAULT_GUARD_RAILS.as_dict()) == DEFAULT_GUARD_RAILS.as_dict()


def test_the_guard_rail_defaults_are_declared_once() -> None:
    """README: 5 %, 1000 ms, 100 requests. A deployment without rails of its own, the
    monitor's alert rules and the CLI's help all read `GuardRails`."""
    from typer.testing import CliRunner

    from app.cli import app
    from core.monitor.alerts import new_config
    from core.store import MonitorConfig

    assert DEFAULT_GUARD_RAILS == GuardRails(max_error_rate=0.05, max_p99_ms=1000.0,
                                             min_requests=100)
    assert dep.DeploymentState(name="m").guard_rails == DEFAULT_GUARD_RAILS.as_dict()
    cfg = new_config("m")
    assert (cfg.max_error_rate, cfg.max_p99_ms, cfg.min_requests) == (0.05, 1000.0, 100)
    table = MonitorConfig(model_name="m")  # the table's own defaults agree
    assert (table.max_error_rate, table.max_p99_ms, table.min_requests) == (0.05, 1000.0, 100)
    shown = CliRunner().invoke(app, ["deploy", "--help"], env={"COLUMNS": "200"}).output
    assert "(default 0.05)" in shown and "(default 1000)" in shown and "(default 100)" in shown


def test_a_refused_deploy_changes_nothing(bs: Session) -> None:
    register(seed=0)
    register(seed=1)
    dep.deploy("churn", 1, warm=None, session=bs)
    before = dep.get_state("churn", session=bs)
    with pytest.raises(dep.InvalidRequestError, match=r"guard_rails\.min_requests"):
        dep.deploy("churn", 2, 10, guard_rails={"min_requests": math.inf}, warm=None,
                   session=bs)
    assert dep.get_state("churn", session=bs) == before


def _predict(serving: Serving, name: str, records: list[dict]) -> None:
    async def run() -> None:
        for r in records:
            await serving.predict(name, [r])

    with ThreadPoolExecutor(1) as pool:  # a loop of its own, as in test_deploy
        pool.submit(asyncio.run, run()).result()


def test_one_models_broken_rails_do_not_stop_another_models_rollback(
        backend: str, backend_db: Database, bs: Session) -> None:
    """`churn` has rails an older release stored without checking them (they make the judge
    fail); `other`'s canary fails for real on a plan it never saw. The loop alerts about
    `churn`, and still rolls `other` back."""
    register("churn", seed=0)
    register("churn", seed=1)
    register("other", seed=0)
    register("other", seed=1, strict_categories=True)
    for name in ("churn", "other"):
        dep.deploy(name, 1, warm=None, session=bs)
        dep.deploy(name, 2, 100, guard_rails={"min_requests": 5}, warm=None, session=bs)
    # What an older release could store: Infinity where the JSON type takes it, else text.
    broken = {"min_requests": math.inf if backend == "sqlite" else "many", "max_p99_ms": -1}
    model = bs.exec(select(RegisteredModel).where(RegisteredModel.name == "churn")).one()
    bs.exec(update(Deployment).where(Deployment.model_id == model.id)
            .values(guard_rails=broken))
    bs.commit()

    def guard_alerts() -> list[Alert]:
        bs.expire_all()
        return list(bs.exec(select(Alert).where(Alert.kind == AlertKind.GUARD)).all())

    serving = Serving(backend_db)
    try:
        for name in ("churn", "other"):  # loaded before traffic, as a server does
            serving.warm(name, 1)
            serving.warm(name, 2)
        _predict(serving, "churn", [record(i) for i in range(6)])  # first in the loop
        _predict(serving, "other", [record(i, "gold") for i in range(8)])  # candidate fails
        assert serving.states.names() == ["churn", "other"]
        serving.flush()
        acted = serving.check_guards()
        assert [v.action for v in acted] == [GuardAction.ROLLBACK]
        assert dep.get_state("other", session=bs).candidate is None
        assert dep.get_state("churn", session=bs).candidate == 2  # not judged, not lost either
        (alert,) = guard_alerts()
        assert (alert.model_name, alert.version, alert.state) == ("churn", 2, AlertState.OPEN)
        assert "guard_rails.min_requests" in alert.message
        serving.check_guards()  # the same failure again: still one alert
        assert len(guard_alerts()) == 1
        dep.deploy("churn", 2, 100, guard_rails={"min_requests": 50}, warm=None,
                   session=bs)  # the fix
        assert dep.get_state("churn", session=bs).guard_rails == {
            **DEFAULT_GUARD_RAILS.as_dict(), "min_requests": 50}  # -1 ms dropped
    finally:
        serving.stop()
    # the server restarted after the fix: its first judgement resolves
    restarted = Serving(backend_db)
    try:
        restarted.state("churn", fresh=True)
        restarted.check_guards()
        (alert,) = guard_alerts()
        assert alert.state == AlertState.RESOLVED
    finally:
        restarted.stop()


def test_rejected_records_do_not_count_towards_a_steps_minimum() -> None:
    """A caller sending records that do not match the schema must not complete a step: the
    rails judge (and auto-advance) only on requests the candidate actually scored."""
    from core.deploy.guards import judge
    from core.deploy.telemetry import Counter

    state = dep.DeploymentState(name="churn", stable=1, candidate=2, percent=10.0,
                                auto_advance=True, guard_rails={"min_requests": 100})
    stats = Counter()
    for _ in range(150):
        stats.add(0.0, False, None, rejected=True)
    for _ in range(10):
        stats.add(2.0, True, ["no"])
    verdict = judge(state, stats)
    assert verdict.action is GuardAction.HOLD and "10 of 100" in verdict.reason


def test_a_guard_alert_calls_the_webhook_like_any_alert(
        session: Session, monkeypatch: pytest.MonkeyPatch) -> None:
    """GUARD alerts used to reach no webhook: opening one now sends the model's webhook the
    same payload as the monitor's alerts (once: refreshing its message sends nothing), and
    the monitor never acts on it (no rollback, even with rollback_on_alert)."""
    from core.deploy import webhook
    from core.monitor.alerts import set_config
    from core.usecases.alert_actions import act

    sent: list[tuple[str, dict]] = []
    monkeypatch.setattr(webhook, "post_webhook", lambda url, payload: sent.append(
        (url, payload)))
    monkeypatch.setattr(webhook, "check_webhook_url", lambda url: None)
    register(seed=0)
    register(seed=1)
    dep.deploy("churn", 1, warm=None, session=session)
    dep.deploy("churn", 2, 10, warm=None, session=session)
    set_config("churn", session=session, rollback_on_alert=True,
               webhook_url="https://alerts.example.com/hook")
    alert = guard_alert.report("churn", 2, "rails broken", session=session)
    guard_alert.report("churn", 2, "rails still broken", session=session)
    for _ in range(50):  # posted by a thread of its own
        if sent:
            break
        time.sleep(0.05)
    assert sent == [("https://alerts.example.com/hook", {
        "id": alert.id, "model": "churn", "version": 2, "kind": "GUARD",
        "severity": "critical", "message": "rails broken", "actions": []})]
    assert act(alert, session=session) == []  # a GUARD alert rolls nothing back
    assert dep.get_state("churn", session=session).candidate == 2
    assert guard_alert.clear("churn", session=session) == 1
