"""One search across a Dask cluster (core.automl.cluster): a real scheduler and two real
workers, each a separate process started here (`dask scheduler`, `dask worker`), as on a
cluster. The search runs its trials on both; pause and cancel requested on the job reach the
running trials; a worker SIGKILLed mid-trial costs that trial only.

The scheduler runs with `allowed-failures` 0, as docs/scale/dask.md recommends (and
compose.yaml sets): a trial whose worker dies fails at once instead of being re-run.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import Session

from core.automl.search import TrialResult, run_search
from core.automl.train import prepare
from core.enums import TrialState
from core.jobs import ledger
from core.jobs.states import JobState
from tests.factories import CANCER, ROOT, free_port, list_versions_or_empty, state, submit, wait_for

distributed = pytest.importorskip(
    "distributed", reason="distributed (Dask) is not installed: `pip install -e .` installs it")

pytestmark = pytest.mark.slow  # real Dask processes and real searches


@dataclass
class Cluster:
    """A scheduler and its workers, each a process; `workers` maps address -> process."""

    address: str
    logs: Path
    procs: list[subprocess.Popen] = field(default_factory=list)
    workers: dict[str, subprocess.Popen] = field(default_factory=dict)

    def start_worker(self) -> str:
        addr = f"tcp://127.0.0.1:{free_port()}"
        log = open(self.logs / f"dask-worker-{len(self.procs)}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", self.address,
             "--nthreads", "1", "--no-nanny", "--no-dashboard", "--listen-address", addr,
             "--local-directory", str(self.logs),
             "--preload", "core.automl.cluster"],  # imports paid at start, not by a trial
            cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        self.workers[addr] = proc
        return addr

    def client(self) -> distributed.Client:
        return distributed.Client(self.address, timeout=30, set_as_default=False)

    def trials_running(self, client: distributed.Client) -> dict[str, list[str]]:
        """Worker -> the search trials it is running now."""
        return {w: [k for k in keys if str(k).startswith("workbench-trial-")]
                for w, keys in client.processing().items()}


def _env() -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    env.pop("WORKBENCH_DASK_SCHEDULER", None)
    return env


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    logs = tmp_path_factory.mktemp("dask")
    port = free_port()
    c = Cluster(f"tcp://127.0.0.1:{port}", logs)
    c.procs.append(subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
         "--port", str(port), "--no-dashboard"],
        cwd=ROOT, env=_env(), stdout=open(logs / "dask-scheduler.log", "wb"),
        stderr=subprocess.STDOUT))
    try:
        c.start_worker()
        c.start_worker()
        with c.client() as client:
            client.wait_for_workers(2, timeout=120)
        yield c
    finally:
        for proc in c.procs:  # ours, and throwaway: no graceful shutdown to wait for
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def client(cluster: Cluster) -> Iterator[distributed.Client]:
    with cluster.client() as c:
        c.wait_for_workers(2, timeout=120)
        yield c


def _data():
    return prepare(pd.read_csv(CANCER), "diagnosis", seed=0)


def test_a_search_runs_its_trials_on_both_workers_and_keeps_the_budget_contract(
        home: Path, client: distributed.Client) -> None:
    result = run_search(_data(), budget=60, max_trials=6, dask=client)
    assert len(result.trials) == 6
    assert {t.worker for t in result.trials if t.worker} == set(client.nthreads())
    assert result.best.score is not None and result.best.score > 0.9
    frame = pd.read_csv(CANCER).drop(columns="diagnosis").head(5)
    assert len(result.pipeline.predict(frame)) == 5  # the refit, done on the driver
    # nothing of the search (its data, its trials) is left on the workers
    wait_for(lambda: not any(client.has_what().values()), 10, "the workers to drop the search")


def test_pause_and_cancel_on_the_job_reach_the_running_trials(
        workers, session: Session, cluster: Cluster, client: distributed.Client) -> None:
    job = submit(session, CANCER, "diagnosis", budget=300)
    workers("--dask", cluster.address)  # `workbench worker --dask ADDRESS`
    running = lambda: any(cluster.trials_running(client).values())  # noqa: E731
    wait_for(running, 120, "trials running on the cluster")

    ledger.request_pause(job.id, True, session=session)
    wait_for(lambda: state(session, job.id) == JobState.PAUSED, 30, "PAUSED")
    assert not running()  # paused trials were stopped, not left to run through the pause

    ledger.request_pause(job.id, False, session=session)
    wait_for(running, 60, "trials running again after the resume")
    ledger.request_cancel(job.id, session=session)
    wait_for(lambda: state(session, job.id) == JobState.CANCELLED, 30, "CANCELLED")
    wait_for(lambda: not running(), 10, "the cluster to drop the cancelled trials")
    assert list_versions_or_empty(session, "breast_cancer") == []


def test_a_worker_killed_mid_trial_costs_only_the_trials_it_held(
        home: Path, cluster: Cluster, client: distributed.Client) -> None:
    outcome: dict[str, object] = {}
    seen: list[TrialResult] = []

    def search() -> None:
        try:
            outcome["result"] = run_search(_data(), budget=120, max_trials=8,
                                           dask=cluster.address,
                                           on_trial=lambda t, _d: seen.append(t))
        except Exception as exc:  # reported by the assertion below
            outcome["error"] = exc

    driver = threading.Thread(target=search, daemon=True)
    driver.start()
    victim: list[str] = []

    def a_trial_is_running() -> bool:
        victim.extend(w for w, keys in cluster.trials_running(client).items() if keys)
        return bool(victim)

    wait_for(a_trial_is_running, 120, "a trial running on a worker")
    cluster.workers[victim[0]].send_signal(signal.SIGKILL)
    driver.join(timeout=240)
    try:
        assert not driver.is_alive(), "the search did not finish after losing a worker"
        assert "error" not in outcome, outcome.get("error")
        result = outcome["result"]
        lost = [t for t in result.trials if t.status == TrialState.FAILED]
        # the trials the victim held (running, or queued behind it on its one thread) fail,
        # naming it; every other trial, including those that read the training data the
        # victim held the only copy of (re-scattered), runs to the end
        assert lost and all(victim[0] in t.reason and "lost" in t.reason for t in lost)
        assert len(lost) <= 2
        assert len(result.trials) == 8 and result.best.score is not None
    finally:  # give the module its two workers back
        cluster.workers.pop(victim[0]).wait(timeout=10)
        cluster.start_worker()
