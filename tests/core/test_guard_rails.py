"""Guard rails: only finite, in-range values are accepted (the error names the field), and
one model whose stored rails are broken cannot stop the guard loop for the others."""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import update
from sqlmodel import select

from core.deploy import deployments as dep
from core.deploy import guard_alert
from core.deploy.service import Serving
from core.store import Alert, Deployment, RegisteredModel, session_scope
from tests.factories import record, register

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
    assert dep.check_guard_rails(dep.DEFAULT_GUARD_RAILS) == dep.DEFAULT_GUARD_RAILS


def test_a_refused_deploy_changes_nothing(backend: str) -> None:
    register(seed=0)
    register(seed=1)
    dep.deploy("churn", 1, warm=None)
    before = dep.get_state("churn")
    with pytest.raises(dep.InvalidRequestError, match=r"guard_rails\.min_requests"):
        dep.deploy("churn", 2, 10, guard_rails={"min_requests": math.inf}, warm=None)
    assert dep.get_state("churn") == before


def _predict(serving: Serving, name: str, records: list[dict]) -> None:
    async def run() -> None:
        for r in records:
            await serving.predict(name, [r])

    with ThreadPoolExecutor(1) as pool:  # a loop of its own, as in test_deploy
        pool.submit(asyncio.run, run()).result()


def test_one_models_broken_rails_do_not_stop_another_models_rollback(backend: str) -> None:
    """`churn` has rails an older release stored without checking them (they make the judge
    fail); `other`'s canary fails for real on a plan it never saw. The loop alerts about
    `churn`, and still rolls `other` back."""
    register("churn", seed=0)
    register("churn", seed=1)
    register("other", seed=0)
    register("other", seed=1, strict_categories=True)
    for name in ("churn", "other"):
        dep.deploy(name, 1, warm=None)
        dep.deploy(name, 2, 100, guard_rails={"min_requests": 5}, warm=None)
    # What an older release could store: Infinity where the JSON type takes it, else text.
    broken = {"min_requests": math.inf if backend == "sqlite" else "many", "max_p99_ms": -1}
    with session_scope(write=True) as s:
        model = s.exec(select(RegisteredModel).where(RegisteredModel.name == "churn")).one()
        s.exec(update(Deployment).where(Deployment.model_id == model.id)
               .values(guard_rails=broken))
    serving = Serving()
    try:
        for name in ("churn", "other"):  # loaded before traffic, as a server does
            serving.warm(name, 1)
            serving.warm(name, 2)
        _predict(serving, "churn", [record(i) for i in range(6)])  # first in the loop
        _predict(serving, "other", [record(i, "gold") for i in range(8)])  # candidate fails
        assert list(serving._states) == ["churn", "other"]
        serving.flush()
        acted = serving.check_guards()
        assert [v.action for v in acted] == ["rollback"]
        assert dep.get_state("other").candidate is None
        assert dep.get_state("churn").candidate == 2  # not judged, but not lost either
        with session_scope() as s:
            (alert,) = s.exec(select(Alert).where(Alert.kind == guard_alert.KIND)).all()
        assert (alert.model_name, alert.version, alert.state) == ("churn", 2, "open")
        assert "guard_rails.min_requests" in alert.message
        serving.check_guards()  # the same failure again: still one alert
        with session_scope() as s:
            assert len(s.exec(select(Alert).where(Alert.kind == guard_alert.KIND)).all()) == 1
        dep.deploy("churn", 2, 100, guard_rails={"min_requests": 50}, warm=None)  # the fix
        assert dep.get_state("churn").guard_rails == {**dep.DEFAULT_GUARD_RAILS,
                                                      "min_requests": 50}  # -1 ms dropped
    finally:
        serving.stop()
    restarted = Serving()  # the server restarted after the fix: its first judgement resolves
    try:
        restarted.state("churn", fresh=True)
        restarted.check_guards()
        with session_scope() as s:
            (alert,) = s.exec(select(Alert).where(Alert.kind == guard_alert.KIND)).all()
        assert alert.state == "resolved"
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
    assert verdict.action == "hold" and "10 of 100" in verdict.reason
