"""Upgrading a store from before tracking (0009) makes every started job a run: its trials
child runs with their params and CV scores, its best score so far a metric history, its
version linked; pending jobs wait to become runs when they start."""

from __future__ import annotations

import pytest

from core.store import Database
from core.tracking import compare_runs, get_run, list_experiments, list_runs
from tests.factories import store_at

pytestmark = pytest.mark.empty_home  # they build old stores where the home's file goes


def _job(job_id: int, state: str, model: str = "churn", version_id: str = "NULL") -> str:
    return ("INSERT INTO job (id, kind, state, model_name, target, task, metric, settings, "
            "progress, cancel_requested, pause_requested, trigger, attempts, max_attempts, "
            "cpu_seconds, peak_memory_mb, gate, log, version_id, created_at, started_at, "
            f"finished_at) VALUES ({job_id}, 'search', '{state}', '{model}', 'y', 'binary', "
            "'roc_auc', '{\"budget\": 5, \"estimators\": [\"linear\"], \"seed\": null}', '{}', "
            "false, false, 'manual', 1, 3, 0, 0, '{}', '', "
            f"{version_id}, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")


def _trial(job_id: int, number: int, score: str, status: str = "ok",
           params: str = '{"C": 1.0}') -> str:
    return ("INSERT INTO trial (job_id, number, estimator, params, metric, cv_mean, cv_std, "
            f"status, reason, created_at) VALUES ({job_id}, {number}, 'linear', '{params}', "
            f"'roc_auc', {score}, 0.01, '{status}', '', CURRENT_TIMESTAMP)")


def test_upgrading_turns_old_jobs_into_runs_with_trials_as_child_runs(backend: str) -> None:
    store_at("0009", [
        "INSERT INTO registeredmodel (id, name, description, created_at) "
        "VALUES (1, 'churn', '', CURRENT_TIMESTAMP)",
        "INSERT INTO modelversion (id, model_id, version, artifact_path, fingerprint, "
        "size_bytes, artifact_format, task, target, metric, score, metrics, evaluation, "
        "input_schema, classes, estimator, params, library_versions, archived, created_by, "
        "created_at) VALUES (7, 1, 1, 'x.skops', 'f', 1, 'skops', 'binary', 'y', 'roc_auc', "
        "0.9, '{\"roc_auc\": 0.9, \"accuracy\": 0.8}', '{}', '[]', '[]', 'linear', "
        "'{\"C\": 0.5}', '{}', false, '', CURRENT_TIMESTAMP)",
        _job(1, "COMPLETED", version_id="7"),
        _trial(1, 0, "0.7"), _trial(1, 1, "0.9", params='{"C": 0.5}'),
        _trial(1, 2, "NULL", status="failed"), _trial(1, 3, "0.8"),
        _job(2, "CANCELLED", model="other"), _trial(2, 0, "0.6"),
        _job(3, "PENDING")])
    db = Database()  # upgrades to head on first use
    try:
        with db.session() as s:
            assert {e.name: e.runs for e in list_experiments(session=s)} == {"churn": 5,
                                                                             "other": 2}
            (done,) = list_runs(session=s, top_level=True, experiment="churn").runs
            assert (done.status, done.job_id, done.version_id, done.source) == (
                "FINISHED", 1, 7, "job")
            assert done.params["budget"] == "5" and done.params["estimator"] == "linear"
            assert done.metrics == {"roc_auc": 0.9, "accuracy": 0.8}
            detail = get_run(done.id, session=s)
            assert [(p.step, p.value) for p in detail.metric_history["roc_auc"]] == [
                (0, 0.7), (1, 0.9), (2, 0.9), (3, 0.9)]  # best so far, by trial number
            trials = list_runs(session=s, parent_run_id=done.id, sort="name").runs
            assert [(t.name, t.status) for t in trials] == [
                ("trial 0 · linear", "FINISHED"), ("trial 1 · linear", "FINISHED"),
                ("trial 2 · linear", "FAILED"), ("trial 3 · linear", "FINISHED")]
            assert trials[1].params == {"C": "0.5", "estimator": "linear"}
            assert trials[1].metrics == {"roc_auc": 0.9, "roc_auc_std": 0.01}
            assert "roc_auc" not in trials[2].metrics
            (killed,) = list_runs(session=s, experiment="other", top_level=True).runs
            assert killed.status == "KILLED" and killed.version_id is None
            side = compare_runs([trials[0].id, trials[1].id], session=s)
            assert [(p.key, p.values) for p in side.params if p.differs] == [("C", ["1.0", "0.5"])]
            # the pending job is not a run yet: it becomes one when a worker starts it
            assert list_runs(session=s, filters=["tags.model=churn"], top_level=True).total == 1
    finally:
        db.dispose()
