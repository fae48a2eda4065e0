"""A deployment change takes effect in a serving process for the first request after it is
committed by any process, even when that process's periodic state refresher has not run
since (a busy machine runs it late): a rollout step, the kill switch (rollback), a new
candidate and a promotion alike. What carries it is the store's change counter, a file
beside the store that every process maps (core/deploy/generation.py)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core.deploy import deployments as dep
from core.deploy import generation
from core.deploy.service import Serving
from core.store import Database
from core.usecases.stages import set_stage
from tests.factories import record, register, register_numeric, store_session


def _versions(serving: Serving, n: int = 12) -> set[int]:
    """The versions that answered `n` requests with distinct sticky keys."""
    async def run() -> list[int]:
        return [(await serving.predict("churn", [record(i)], f"user-{i}")).version
                for i in range(n)]

    with ThreadPoolExecutor(1) as pool:  # an event loop of its own, whatever runs here
        return set(pool.submit(asyncio.run, run()).result())


@pytest.mark.slow  # three versions registered and loaded: ~4 s alone, 10 s on a busy machine
def test_every_change_reaches_a_serving_process_whose_refresher_has_not_run(
        home: Path) -> None:
    register()
    register(seed=1)
    register(seed=2)
    with store_session() as s:
        dep.deploy("churn", 1, session=s)
    serving = Serving(Database())
    # as after `start()`: the refresher owns freshness and requests take the cached rule
    # whatever its age; its thread never runs here, the latest a busy machine can make it
    serving.states.kept_fresh = True
    try:
        for v in (2, 3):
            serving.warm("churn", v)  # loaded: routing alone decides who answers
        assert _versions(serving) == {1}
        changes = [  # each one by "another process": a store session of its own
            (lambda s: dep.deploy("churn", 2, 100, session=s), {2}),        # rollout 100 %
            (lambda s: dep.rollback("churn", reason="kill switch", session=s), {1}),
            (lambda s: dep.deploy("churn", 3, 50, session=s), {1, 3}),       # a new canary
            (lambda s: dep.set_percent("churn", 0, session=s), {1}),
            (lambda s: dep.set_percent("churn", 100, session=s), {3}),
            (lambda s: dep.promote("churn", session=s), {3}),
            (lambda s: set_stage("churn", 1, "production", session=s), {1}),  # a stage move
        ]
        for change, expected in changes:
            with store_session() as s:
                change(s)
            assert _versions(serving) == expected
    finally:
        serving.stop()


def test_only_deployment_and_alias_changes_invalidate_the_cached_rules(home: Path) -> None:
    register()
    with store_session() as s:
        dep.deploy("churn", 1, session=s)
    serving = Serving(Database())
    serving.states.kept_fresh = True  # as after `start()`: no age limit, only changes count
    try:
        _versions(serving)
        before = serving.states.generation()
        serving.flush()  # the prediction log and telemetry, written every second
        register(seed=1)  # a new version: no served rule changed
        assert serving.states.generation() == before
        assert serving.states.peek("churn") is not None  # the request path stays O(1)
        with store_session() as s:
            dep.deploy("churn", 2, 10, session=s)
        assert serving.states.generation() == before + 1
        assert serving.states.peek("churn") is None  # the next request reads it again
    finally:
        serving.stop()


def test_the_counter_is_shared_by_processes_and_never_loses_a_bump(tmp_path: Path) -> None:
    path = tmp_path / "workbench.db-deploygen"
    one, two = generation.Generation(path), generation.Generation(path)  # two processes'
    assert one.now() == two.now() == 0
    one.bump()
    assert two.now() == 1

    def bump_many() -> None:
        for _ in range(100):
            (one if threading.get_ident() % 2 else two).bump()

    threads = [threading.Thread(target=bump_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert one.now() == two.now() == 401
    assert generation.path_of("sqlite:///:memory:") is None
    assert generation.path_of(f"sqlite:///{tmp_path}/w.db") == tmp_path / "w.db-deploygen"


def _defaults(serving: Serving, n: int) -> list[str | BaseException]:
    """`n` concurrent `/invocations` lookups of the default model (answers or errors)."""
    async def run() -> list[str | BaseException]:
        return await asyncio.gather(*(serving.default_model() for _ in range(n)),
                                    return_exceptions=True)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, run()).result()


def test_concurrent_invocations_share_one_default_model_lookup(backend: str) -> None:
    """32 requests arriving when the cached default is dropped used to start 32 lookups of
    the model list in threads (8 % of a busy worker's CPU); one lookup answers them all, each
    time (the production version moved between rounds, which drops the cached answer)."""
    from sqlalchemy import event

    with store_session() as s:
        register_numeric(s)
        register_numeric(s, seed=1)
        dep.deploy("churn", 1, session=s)
    db = Database()
    serving = Serving(db)
    lookups: list[str] = []

    def seen(_conn, _cursor, statement: str, *_args) -> None:
        if "ORDER BY alias.id" in statement:  # the model list's alias query
            lookups.append(statement)

    event.listen(db.engine, "before_cursor_execute", seen)
    try:
        for round_ in range(1, 11):
            with store_session() as s:
                set_stage("churn", 1 + round_ % 2, "production", session=s)
            assert _defaults(serving, 32) == ["churn"] * 32
            assert len(lookups) == round_
    finally:
        event.remove(db.engine, "before_cursor_execute", seen)
        serving.stop()


def test_the_default_model_follows_a_deployment_change_at_once(backend: str) -> None:
    with store_session() as s:
        register_numeric(s)
        register_numeric(s, name="other")
        dep.deploy("churn", 1, session=s)
    serving = Serving(Database())
    try:
        assert _defaults(serving, 1) == ["churn"]
        with store_session() as s:  # within the cached answer's second
            dep.deploy("other", 1, session=s)
        [refused] = _defaults(serving, 1)
        assert "2 models are deployed" in str(refused)
    finally:
        serving.stop()
