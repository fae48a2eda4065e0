"""The read-only views behind the parity routes, on SQLite and PostgreSQL: a job's ranked
trials (pruned and failed last, with reasons), a version's lineage graph over several
retrains, and the list of deployments."""

from __future__ import annotations

import pytest

from core.deploy import deployments as dep
from core.errors import NotFoundError
from core.jobs import ledger
from core.store import Database
from core.usecases.inspection import (
    job_logs,
    job_trials,
    list_deployments,
    version_importance,
    version_lineage,
)
from tests.factories import WINE, register_numeric, store_session


def _job(s, **kw):
    from core.data.datasets import ingest_path

    ds = ingest_path(WINE, session=s).dataset
    return ledger.create_job(session=s, model_name="churn", target="y", task="binary",
                             metric="log_loss", dataset_id=ds.id, **kw), ds


def test_trials_are_ranked_by_the_metric_with_the_rest_last(backend_db: Database) -> None:
    with store_session() as s:
        job, _ = _job(s)
        for number, status, score, reason in [(0, "ok", 0.5, ""), (1, "pruned", None, "behind"),
                                              (2, "ok", 0.2, ""), (3, "failed", None, "boom")]:
            ledger.add_trial(job.id, session=s, number=number, estimator="knn",
                             params={"n_neighbors": 3 + number}, metric="log_loss",
                             cv_mean=score, cv_std=0.01 if score else None, fit_time_s=0.1,
                             predict_ms_per_1k=1.0, status=status, reason=reason)
        board = job_trials(job.id, session=s)
        logs = job_logs(job.id, session=s)
    assert board.greater_is_better is False
    assert [(t.rank, t.number) for t in board.trials] == [(1, 2), (2, 0), (3, 1), (4, 3)]
    assert [t.reason for t in board.trials[2:]] == ["behind", "boom"]
    assert logs.state == "PENDING" and [t.to_state for t in logs.transitions] == ["PENDING"]


def test_lineage_walks_every_retrain_back_to_its_data(backend_db: Database) -> None:
    with store_session() as s:
        job, ds = _job(s)
        register_numeric(s, job_id=job.id, dataset_id=ds.id)
        register_numeric(s, seed=1)  # parent: version 1
        register_numeric(s, seed=2)  # parent: version 2
        graph = version_lineage("churn", 3, session=s)
        with pytest.raises(NotFoundError):
            version_lineage("churn", 4, session=s)
        importance = version_importance("churn", 3, session=s)
    ids = [n.id for n in graph.nodes]
    assert ids[0] == graph.root == "version:churn:3"
    assert set(ids) == {"version:churn:3", "version:churn:2", "version:churn:1",
                        f"job:{job.id}", f"dataset:{ds.id}"}
    assert {(e.from_, e.to, e.relation) for e in graph.edges} == {
        ("version:churn:3", "version:churn:2", "parent"),
        ("version:churn:2", "version:churn:1", "parent"),
        (f"job:{job.id}", "version:churn:1", "registered"),
        (f"dataset:{ds.id}", f"job:{job.id}", "input")}
    assert importance.features == [] and "No feature importance" in importance.note


def test_deployments_lists_models_that_serve(backend_db: Database) -> None:
    with store_session() as s:
        register_numeric(s)
        register_numeric(s, name="other")
        assert list_deployments(session=s) == []
        dep.deploy("churn", 1, 100, session=s)
        register_numeric(s, seed=1)
        dep.deploy("churn", 2, 20, session=s)
        rows = list_deployments(session=s)
    assert [(r.name, r.stable, r.candidate, r.percent) for r in rows] == [("churn", 1, 2, 20.0)]
