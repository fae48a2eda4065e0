"""Tracking as a user relies on it, on SQLite and PostgreSQL: runs logged from Python (params,
metric histories by step, tags, artifacts; the block's outcome ends the run), the listing's
filters, sort and pages, compare, experiments, concurrent loggers, and artifact paths that
cannot leave the run's root."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import core.tracking as tracking
from core.errors import ConflictError, InputError, NotFoundError
from core.store import Database
from core.tracking import MetricPoint, RunStatus


def _run(db: Database, experiment: str, name: str, *, params: dict, metrics: dict,
         status: RunStatus = RunStatus.FINISHED, tags: dict | None = None) -> int:
    with db.session() as s:
        run = tracking.create_run(session=s, experiment=experiment, name=name, params=params,
                                  tags=tags)
        tracking.log_to_run(run.id, session=s,
                            metrics=[MetricPoint(k, v, 0) for k, v in metrics.items()])
        tracking.end_run(run.id, status, session=s)
        return run.id


def test_a_python_run_logs_params_metric_history_tags_and_artifacts(
        backend_db: Database, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    with tracking.start_run(experiment="churn", name="baseline", db=backend_db) as run:
        run.log_params({"max_depth": 3, "features": ["a", "b"], "solver": "lbfgs"})
        run.log_metric("loss", 0.9, step=0)
        run.log_metric("loss", 0.5, step=1)
        run.log_metric("loss", 0.7)  # no step: one after the last
        run.log_metric("loss", 0.2, step=10)
        run.log_metrics({"auc": 0.8}, step=10)
        run.set_tags({"team": "ml"})
        run.set_tag("team", "risk")  # tags may change
        run.log_artifact(notes)
        run.log_artifact(b"\x89PNG...", "plots/loss.png")
        assert run.read().status == RunStatus.RUNNING
    with backend_db.session() as s:
        got = tracking.get_run(run.run_id, session=s)
        files = tracking.list_artifacts(run.run_id, session=s)
    assert (got.experiment, got.name, got.status, got.source) == ("churn", "baseline",
                                                                  "FINISHED", "user")
    assert got.end_time is not None and got.duration_s >= 0
    assert got.params == {"features": '["a", "b"]', "max_depth": "3", "solver": "lbfgs"}
    assert [(p.step, p.value) for p in got.metric_history["loss"]] == [
        (0, 0.9), (1, 0.5), (2, 0.7), (10, 0.2)]
    assert got.metrics == {"auc": 0.8, "loss": 0.2}  # latest = highest step
    assert got.tags == {"team": "risk"}
    assert [(a.path, a.size_bytes) for a in files] == [("notes.txt", 5), ("plots/loss.png", 7)]


def test_numpy_values_are_logged_as_their_plain_numbers(backend_db: Database) -> None:
    import numpy as np

    with tracking.start_run(experiment="x", db=backend_db) as run:
        run.log_params({"lr": np.float64(0.1), "depth": np.int64(5),
                        "grid": np.array([1, 2])})
        run.log_metric("auc", np.float32(0.5), step=np.int64(3))
    got = run.read()
    assert got.params == {"depth": "5", "grid": "[1, 2]", "lr": "0.1"}
    assert got.metrics == {"auc": 0.5} and got.metric_history["auc"][0].step == 3


def test_the_latest_value_is_the_highest_step_not_the_last_logged(
        backend_db: Database) -> None:
    with tracking.start_run(experiment="x", db=backend_db) as run:
        run.log_metric("acc", 0.9, step=5)
        run.log_metric("acc", 0.1, step=2)  # a late point for an earlier step
    assert run.read().metrics == {"acc": 0.9}


def test_an_exception_in_the_block_fails_the_run_and_goes_on(backend_db: Database) -> None:
    with pytest.raises(RuntimeError, match="diverged"):
        with tracking.start_run(experiment="x", db=backend_db) as run:
            run.log_metric("loss", 1e6)
            raise RuntimeError("diverged")
    assert run.read().status == RunStatus.FAILED


def test_start_run_opens_the_default_store_by_itself(home: Path) -> None:
    with tracking.start_run(experiment="solo") as run:
        run.log_param("k", 1)
    with Database().session() as s:
        assert tracking.get_run(run.run_id, session=s).params == {"k": "1"}


def test_an_ended_run_takes_nothing_more_and_params_do_not_change(
        backend_db: Database) -> None:
    with tracking.start_run(experiment="x", db=backend_db) as run:
        run.log_params({"lr": 0.1})
        run.log_params({"lr": 0.1})  # the same value again: fine
        with pytest.raises(ConflictError, match=r"lr: logged '0.1', now '0.2'"):
            run.log_params({"lr": 0.2, "new": 1})
        assert run.read().params == {"lr": "0.1"}  # nothing of the refused call was kept
    for log in (lambda: run.log_metric("a", 1.0), lambda: run.log_params({"b": 1}),
                lambda: run.set_tags({"c": "d"})):
        with pytest.raises(ConflictError, match="FINISHED: an ended run takes no more"):
            log()
    with backend_db.session() as s, pytest.raises(ConflictError, match="ended already"):
        tracking.end_run(run.run_id, RunStatus.KILLED, session=s)


@pytest.mark.parametrize("bad, message", [
    ({"params": {"ok": 1, "": 1}}, "params: '' is not a valid name"),
    ({"params": {"ok": 1, "a=b": 1}}, "params: 'a=b' is not a valid name"),
    ({"params": {"ok": 1, "x": "v" * 6001}}, "params.x: the value has 6001 characters"),
    ({"metrics": [MetricPoint("loss", float("nan"))]}, "metrics.loss: nan is not a finite"),
    ({"metrics": [MetricPoint("loss", "high")]}, "metrics.loss: 'high' is not a number"),
    ({"metrics": [MetricPoint("loss", 1.0, -1)]}, "metrics.loss.step: -1 is not"),
    ({"tags": {"bad key ": "v"}}, "tags: 'bad key ' is not a valid name"),
])
def test_bad_input_names_the_field_and_writes_nothing(db: Database, bad: dict,
                                                      message: str) -> None:
    with tracking.start_run(experiment="x", db=db) as run:
        with db.session() as s, pytest.raises(InputError, match=message) as caught:
            tracking.log_to_run(run.run_id, session=s, **{"params": {"ok": 1}, **bad})
        assert caught.value.http_status == 422
        assert run.read().params == {}


def test_unknown_runs_and_experiments_are_not_found(db: Database) -> None:
    with db.session() as s:
        for call in (lambda: tracking.get_run(99, session=s),
                     lambda: tracking.log_to_run(99, session=s, tags={"a": "b"}),
                     lambda: tracking.list_runs(session=s, experiment="nope"),
                     lambda: tracking.compare_runs([99], session=s),
                     lambda: tracking.list_artifacts(99, session=s),
                     lambda: tracking.create_run(session=s, experiment="x",
                                                 parent_run_id=99)):
            with pytest.raises(NotFoundError):
                call()


def test_experiments_are_created_on_first_use_and_once(backend_db: Database) -> None:
    with backend_db.session() as s:
        tracking.create_experiment("planned", session=s, description="later")
        with pytest.raises(ConflictError, match="exists already"):
            tracking.create_experiment("planned", session=s)
    _run(backend_db, "churn", "a", params={}, metrics={})
    _run(backend_db, "churn", "b", params={}, metrics={})
    with backend_db.session() as s:
        got = {e.name: (e.runs, e.description) for e in tracking.list_experiments(session=s)}
    assert got == {"churn": (2, ""), "planned": (0, "later")}


@pytest.fixture
def six_runs(backend_db: Database) -> dict[str, int]:
    ids = {}
    for i, (exp, depth, auc, status) in enumerate([
            ("churn", 3, 0.70, "FINISHED"), ("churn", 5, 0.85, "FINISHED"),
            ("churn", 10, 0.90, "FAILED"), ("churn", "auto", None, "KILLED"),
            ("fraud", 3, 0.95, "FINISHED"), ("fraud", 3.0, 0.60, "FINISHED")]):
        name = f"r{i}"
        ids[name] = _run(backend_db, exp, name, params={"max_depth": depth},
                         metrics={} if auc is None else {"roc_auc": auc},
                         status=RunStatus(status), tags={"team": "a" if i % 2 else "b"})
    return ids


def _names(db: Database, **query) -> list[str]:
    with db.session() as s:
        return [r.name for r in tracking.list_runs(session=s, **query).runs]


def test_runs_filter_by_experiment_status_param_metric_and_tag(
        backend_db: Database, six_runs: dict[str, int]) -> None:
    def names(*filters: str, **query) -> set[str]:
        return set(_names(backend_db, filters=filters, **query))

    assert names() == {f"r{i}" for i in range(6)}  # across experiments
    assert names(experiment="fraud") == {"r4", "r5"}
    assert names(experiment=["fraud", "churn"], status="FAILED") == {"r2"}
    assert names(status=["failed", "KILLED"]) == {"r2", "r3"}
    assert names("params.max_depth=3") == {"r0", "r4", "r5"}  # '3.0' is the number 3
    assert names("params.max_depth='auto'") == {"r3"}
    assert names("params.max_depth>=5") == {"r1", "r2"}  # as numbers: 10 > 5; 'auto' never
    assert names("params.max_depth!=3") == {"r1", "r2", "r3"}
    assert names("metrics.roc_auc>0.8") == {"r1", "r2", "r4"}
    assert names("metrics.roc_auc >= 0.85", "params.max_depth<10") == {"r1", "r4"}
    assert names("metrics.roc_auc!=0.7") == {"r1", "r2", "r4", "r5"}  # r3 has no roc_auc
    assert names("tags.team=a", experiment="churn") == {"r1", "r3"}
    assert names("metrics.missing<1") == set()


@pytest.mark.parametrize("bad, field", [
    ({"filters": ["roc_auc>0.8"]}, "filter: 'roc_auc>0.8' is not a filter"),
    ({"filters": ["metrics.roc_auc>high"]}, "metrics compare with a number"),
    ({"filters": ["params.depth>deep"]}, "compares params as numbers"),
    ({"filters": ["tags.team>a"]}, "tags take = or != only"),
    ({"sort": "metrics."}, "sort: 'metrics.' is not a sort order"),
    ({"sort": "colour"}, "sort: 'colour'"),
    ({"status": "DONE"}, "status: 'DONE' is not among"),
    ({"limit": 0}, "limit: 0"),
    ({"offset": -1}, "offset: -1"),
])
def test_a_bad_query_says_what_is_wrong(db: Database, bad: dict, field: str) -> None:
    with db.session() as s, pytest.raises(InputError, match=field) as caught:
        tracking.list_runs(session=s, **bad)
    assert caught.value.http_status == 422


def test_runs_sort_by_metric_param_or_field_and_come_in_pages(
        backend_db: Database, six_runs: dict[str, int]) -> None:
    by_auc = ["r4", "r2", "r1", "r0", "r5", "r3"]  # r3 has no roc_auc: last either way
    assert _names(backend_db, sort="-metrics.roc_auc") == by_auc
    assert _names(backend_db, sort="metrics.roc_auc") == ["r5", "r0", "r1", "r2", "r4", "r3"]
    assert _names(backend_db, sort="-params.max_depth")[:2] == ["r2", "r1"]  # 10 > 5: numbers
    assert _names(backend_db, sort="name") == [f"r{i}" for i in range(6)]
    assert _names(backend_db) == [f"r{i}" for i in reversed(range(6))]  # newest first
    pages, offset = [], 0
    with backend_db.session() as s:
        while offset is not None:
            page = tracking.list_runs(session=s, sort="-metrics.roc_auc", limit=4,
                                      offset=offset)
            assert page.total == 6
            pages.append([r.name for r in page.runs])
            offset = page.next_offset
    assert pages == [by_auc[:4], by_auc[4:]]


def test_compare_puts_params_and_metrics_side_by_side(backend_db: Database,
                                                     six_runs: dict[str, int]) -> None:
    r0, r1, r3 = six_runs["r0"], six_runs["r1"], six_runs["r3"]
    with backend_db.session() as s:
        side = tracking.compare_runs([r1, r0, r3, r1], session=s)  # the order asked, once each
    assert [r.id for r in side.runs] == [r1, r0, r3]
    assert [(p.key, p.values, p.differs) for p in side.params] == [
        ("max_depth", ["5", "3", "auto"], True)]
    assert [(m.key, m.values, m.differs) for m in side.metrics] == [
        ("roc_auc", [0.85, 0.7, None], True)]


def test_concurrent_loggers_to_one_run_lose_no_metric_point(backend_db: Database) -> None:
    with backend_db.session() as s:
        run_id = tracking.create_run(session=s, experiment="x").id
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def logger(worker: int) -> None:
        active = tracking.ActiveRun(backend_db, run_id)
        barrier.wait(timeout=30)
        try:
            for i in range(10):
                active.log_metric("loss", worker + i / 100, step=worker * 100 + i)
                active.log_metric("shared", float(worker))  # steps chosen by the store
                active.set_tag(f"w{worker}", str(i))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=logger, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    with backend_db.session() as s:
        got = tracking.get_run(run_id, session=s)
    assert len(got.metric_history["loss"]) == 60
    assert sorted(p.step for p in got.metric_history["shared"]) == list(range(60))
    assert got.metrics["loss"] == 5.09  # the highest step: worker 5, i 9
    assert len(got.tags) == 6


# -- artifact paths ---------------------------------------------------------------------------
ESCAPES = ["../secret.txt", "../../secret.txt", "a/../../secret.txt", "a/../b.txt",
           "/etc/passwd", "//etc/passwd", "%2e%2e/secret.txt", "%2e%2e%2fsecret.txt",
           "%252e%252e/secret.txt", "..%2fsecret.txt", "..\\secret.txt", "a\\..\\..\\x",
           "C:\\Windows\\win.ini", "C:/x", "b.txt#/../../secret.txt", "b.txt?x=../../s",
           "b.txt\x00.png", "./b.txt", "a//b.txt", "a/", "", ".", "..", "out/secret.txt",
           "out_file"]


@pytest.fixture
def run_with_files(db: Database, tmp_path: Path) -> int:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    with tracking.start_run(experiment="x", db=db) as run:
        run.log_artifact(b"fine", "b.txt")
        run.log_artifact(b"deep", "a/c.txt")
    root = tracking.run_root(run.run_id)
    os.symlink(tmp_path, root / "out")  # links that lead outside the root
    os.symlink(secret, root / "out_file")
    os.symlink(root / "b.txt", root / "inside")  # … and one that stays inside
    (root.parent / "secret.txt").write_text("another run's")
    return run.run_id


@pytest.mark.parametrize("path", ESCAPES)
def test_no_artifact_path_escapes_the_run_root(db: Database, run_with_files: int,
                                               path: str) -> None:
    with db.session() as s, pytest.raises(NotFoundError, match="has no artifact"):
        tracking.artifact_file(run_with_files, path, session=s)


def test_artifacts_inside_the_root_list_and_resolve(db: Database, run_with_files: int) -> None:
    with db.session() as s:
        listed = [a.path for a in tracking.list_artifacts(run_with_files, session=s)]
        assert tracking.artifact_file(run_with_files, "a/c.txt", session=s).read_bytes() == \
            b"deep"
        assert tracking.artifact_file(run_with_files, "inside", session=s).read_bytes() == \
            b"fine"
    assert listed == ["a/c.txt", "b.txt", "inside"]  # outward links are not listed


@pytest.mark.parametrize("name", ["../x", "/abs", "a/../b", "a\\b", "%2e%2e", "a#b", ""])
def test_an_artifact_cannot_be_logged_outside_the_root(db: Database, name: str) -> None:
    with tracking.start_run(experiment="x", db=db) as run:
        with pytest.raises(InputError, match="is not an artifact path"):
            run.log_artifact(b"x", name)
    assert not (tracking.run_root(run.run_id).parent / "x").exists()


def test_first_uses_of_a_new_experiment_at_once_make_one_experiment(
        backend_db: Database) -> None:
    from tests.factories import race

    def start() -> int:
        with backend_db.session() as s:
            return tracking.create_run(session=s, experiment="fresh").id

    def create() -> object:
        with backend_db.session() as s:
            return tracking.create_experiment("planned", session=s)

    started = race(start, start, start)
    assert all(isinstance(r, int) for r in started), started
    created = race(create, create)
    assert sorted(type(r).__name__ for r in created) == ["ConflictError", "Experiment"]
    with backend_db.session() as s:
        got = {e.name: e.runs for e in tracking.list_experiments(session=s)}
    assert got == {"fresh": 3, "planned": 0}
