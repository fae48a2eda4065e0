"""Every training job is a run (real searches, built once per module): its trials are child
runs with their params and CV scores, the best score so far is a metric history by trial
number, the registered version is linked, and the run's artifacts (pipeline, leaderboard,
evaluation, plots, log) are listed and downloadable. A fixed job is a run too; a cancelled
job's run is KILLED and a failed one's FAILED."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

import core.tracking as tracking
from app.api import create_app
from app.cli import app as cli
from core.automl.request import TrainingRequest
from core.jobs import ledger
from core.jobs.states import JobState
from core.settings import get_settings
from core.store import Database, ModelVersion
from core.tracking.job_runs import close_runs_of_ended_jobs
from core.usecases import training
from tests.factories import CANCER, WINE, built_home, copy_home, store_session

pytestmark = pytest.mark.slow  # real searches
runner = CliRunner()


@pytest.fixture(scope="module")
def searched_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One real search of wine (the CLI's `automl`): job 1, version 1. It stops at 3 trials,
    not at a short time budget, so a busy machine still gets the several trials asserted."""
    with built_home(tmp_path_factory, "tracked") as path:
        result = runner.invoke(cli, ["automl", str(WINE), "--target", "cultivar", "--budget",
                                     "600", "--trials", "3", "--estimators", "linear,knn",
                                     "--no-ensemble"])
        assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def searched(home: Path, searched_home: Path) -> Path:
    return copy_home(searched_home, home)


def _job_run(s) -> tracking.RunDetailPublic:
    (run,) = tracking.list_runs(session=s, top_level=True).runs
    return tracking.get_run(run.id, session=s)


def test_a_search_is_a_run_with_a_child_run_per_trial(searched: Path) -> None:
    with store_session() as s:
        run = _job_run(s)
        trials = ledger.trials_of(1, session=s)
        children = tracking.list_runs(session=s, parent_run_id=run.id, sort="name",
                                      limit=1000).runs
        version = s.get(ModelVersion, run.version_id)
    assert (run.experiment, run.status, run.source, run.job_id) == ("wine", "FINISHED",
                                                                    "job", 1)
    assert run.version_id == version.id and run.tags["version"] == "wine:1"
    assert run.dataset_id == version.dataset_id and run.end_time is not None
    assert run.params["metric"] == "log_loss" and run.params["budget"] == "600.0"
    assert run.params["estimator"] == version.estimator  # the winner's configuration
    assert len(trials) >= 2 and len(children) == len(trials) == len(run.child_run_ids)
    with store_session() as s:
        assert tracking.list_runs(session=s, job_id=1, limit=1000).total == len(trials) + 1
    by_number = {int(c.tags["trial.number"]): c for c in children}
    for t in trials:
        child = by_number[t.number]
        assert child.params["estimator"] == t.estimator and child.job_id == 1
        assert {k: child.params[k] for k in t.params} == {k: str(v) for k, v in t.params.items()}
        if t.status == "ok":
            assert child.status == "FINISHED"
            assert child.metrics["log_loss"] == pytest.approx(t.cv_mean)
            assert child.metrics["log_loss_std"] == pytest.approx(t.cv_std)


def test_the_best_score_so_far_is_a_metric_history_by_trial(searched: Path) -> None:
    with store_session() as s:
        run = _job_run(s)
        trials = ledger.trials_of(1, session=s)
    history = run.metric_history["log_loss"]
    scored = [t for t in trials if t.cv_mean is not None]
    assert [p.step for p in history] == [t.number for t in trials
                                         if t.number >= scored[0].number]
    best = [min(t.cv_mean for t in scored if t.number <= p.step) for p in history]
    assert [p.value for p in history] == pytest.approx(best)  # log loss: lower is better
    assert all(a >= b for a, b in zip(best, best[1:], strict=False))
    assert run.metrics["log_loss"] == pytest.approx(best[-1])
    assert {"accuracy", "f1"} <= set(run.metrics)  # the registered version's other metrics


def test_a_search_runs_artifacts_are_listed_and_downloadable(searched: Path) -> None:
    with store_session() as s:
        run = _job_run(s)
        version = s.get(ModelVersion, run.version_id)
        trials = ledger.trials_of(1, session=s)
    with TestClient(create_app(background=False)) as client:
        listed = {a["path"] for a in client.get(f"/v1/runs/{run.id}/artifacts").json()}
        assert {"model.skops", "leaderboard.csv", "evaluation.json", "plots/search.png",
                "job.log"} <= listed

        def get(path: str) -> bytes:
            response = client.get(f"/v1/runs/{run.id}/artifacts/{path}")
            assert response.status_code == 200, response.text
            return response.content

        assert get("model.skops") == (get_settings().home / version.artifact_path).read_bytes()
        rows = list(csv.DictReader(io.StringIO(get("leaderboard.csv").decode())))
        assert [int(r["number"]) for r in rows] == [t.number for t in trials]
        evaluation = json.loads(get("evaluation.json"))
        assert evaluation["confusion_matrix"] == version.evaluation["confusion_matrix"]
        assert "reference" not in evaluation  # the drift reference stays internal
        assert get("plots/search.png")[:8] == b"\x89PNG\r\n\x1a\n"


def test_two_trials_compare_side_by_side(searched: Path) -> None:
    with store_session() as s:
        run = _job_run(s)
        a, b = run.child_run_ids[:2]
        side = tracking.compare_runs([a, b], session=s)
    keys = {p.key for p in side.params}
    assert "estimator" in keys and {m.key for m in side.metrics} >= {"log_loss"}


def test_a_fixed_job_is_a_run_too(home: Path) -> None:
    result = runner.invoke(cli, ["train", str(CANCER), "--target", "diagnosis",
                                 "--estimator", "linear", "--param", "C=0.5"])
    assert result.exit_code == 0, result.output
    with store_session() as s:
        run = _job_run(s)
        (child,) = tracking.list_runs(session=s, parent_run_id=run.id).runs
    assert (run.status, run.params["kind"], run.version_id) == ("FINISHED", "fixed", 1)
    assert child.params == {"C": "0.5", "estimator": "linear"} and child.status == "FINISHED"
    assert "plots/roc_curve.png" in {a.path for a in _artifacts(run.id)}


def _artifacts(run_id: int) -> list:
    with store_session() as s:
        return tracking.list_artifacts(run_id, session=s)


def test_a_cancelled_job_is_killed_and_a_failed_one_failed(backend_db: Database) -> None:
    db = backend_db  # the job hook's writes on both databases
    request = TrainingRequest.create(dataset=CANCER, target="diagnosis", budget=30,
                                     estimators=["linear"], ensemble=False)
    with db.session() as s:
        job = training.submit(request, session=s, state=JobState.RUNNING)
    trials: list[object] = []
    outcome = training.execute(db, job.id, progress=trials.append,
                               should_stop=lambda: len(trials) >= 1)
    assert outcome is None
    with db.session() as s:
        killed = tracking.list_runs(session=s, top_level=True).runs[0]
        failing = training.submit(request, session=s, state=JobState.RUNNING)

    def explode(_progress: object) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        training.execute(db, failing.id, progress=explode)
    with db.session() as s:
        failed = tracking.list_runs(session=s, top_level=True).runs[0]
        assert ledger.get_job(job.id, session=s).state == JobState.CANCELLED
    assert (killed.status, killed.job_id, killed.version_id) == ("KILLED", job.id, None)
    assert (failed.status, failed.job_id) == ("FAILED", failing.id)
    assert "leaderboard.csv" in {a.path for a in _artifacts(killed.id)}
    with db.session() as s:
        (trial,) = tracking.list_runs(session=s, parent_run_id=killed.id).runs
        history = tracking.get_run(killed.id, session=s).metric_history["roc_auc"]
    assert trial.status == "FINISHED" and trial.metrics["roc_auc"] == history[0].value


def test_the_run_of_a_job_whose_worker_died_ends_with_the_job(db: Database) -> None:
    """A worker killed mid-job never ends its run; once the reaper fails the job, the next
    worker turn ends the run FAILED too."""
    from core.tracking.job_runs import job_started

    request = TrainingRequest.create(dataset=CANCER, target="diagnosis", budget=2)
    with db.session() as s:
        job = training.submit(request, session=s, state=JobState.RUNNING)
    run_id = job_started(db, job.id)  # … and then the worker was SIGKILLed
    with db.session() as s:
        ledger.transition(job.id, JobState.FAILED, "worker lost", session=s)
    with db.session() as s:
        assert close_runs_of_ended_jobs(session=s) == 1
        assert tracking.get_run(run_id, session=s).status == "FAILED"


def test_a_worker_run_job_keeps_its_log_as_an_artifact(db: Database) -> None:
    from core.usecases.worker import job_worker

    request = TrainingRequest.create(dataset=CANCER, target="diagnosis", budget=2,
                                     estimators=["linear"], ensemble=False)
    with db.session() as s:
        job = training.submit(request, session=s)
    assert job_worker(db).run(max_jobs=1) == 1
    with db.session() as s:
        (run,) = tracking.list_runs(session=s, job_id=job.id, top_level=True).runs
        log = tracking.artifact_file(run.id, "job.log", session=s).read_text()
    assert run.status == "FINISHED" and run.version_id is not None
    assert f"job {job.id} started" in log and "trial 0 linear ok" in log
