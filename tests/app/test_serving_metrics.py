"""`/metrics` with several server workers: prometheus_client's multiprocess mode sums every
worker's counts, whichever worker answers the scrape (before it, each scrape showed one random
worker's)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from core.deploy import deployments as dep
from core.deploy.metrics import mark_process_dead, multiprocess_exposition
from tests.factories import (
    ROOT,
    free_port,
    metric,
    record,
    register,
    store_session,
    wait_healthy,
)

CHILD = """
import sys
from core.deploy.metrics import ServingMetrics

m = ServingMetrics()
for _ in range(int(sys.argv[1])):
    m.observe("churn", 1, 0.003, True)
m.observe("churn", 1, 0.2, False)
m.reject("churn", 2)
m.set_loaded(int(sys.argv[2]))
m.publish()  # as a worker's telemetry flush does, at the latest when it stops
"""


def test_two_processes_counts_are_summed_in_one_scrape(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    pids = []
    for n, loaded in ((5, 1), (7, 2)):
        child = subprocess.run([sys.executable, "-c", CHILD + "print(__import__('os').getpid())",
                                str(n), str(loaded)], cwd=ROOT, env=env, check=True,
                               capture_output=True, text=True)
        pids.append(int(child.stdout.strip()))
    text = multiprocess_exposition(str(tmp_path)).decode()
    one = {"model": "churn", "version": "1"}
    assert metric(text, "workbench_requests_total", **one) == 5 + 7 + 2
    assert metric(text, "workbench_request_outcomes_total", **one, outcome="ok") == 12
    assert metric(text, "workbench_request_errors_total", **one) == 2
    assert metric(text, "workbench_request_duration_seconds_count", **one) == 14
    assert metric(text, "workbench_request_duration_seconds_bucket", **one, le="0.005") == 12
    assert metric(text, "workbench_request_duration_seconds_sum", **one) == \
        pytest.approx(12 * 0.003 + 2 * 0.2)
    assert metric(text, "workbench_request_outcomes_total", model="churn", version="2",
                  outcome="rejected") == 2
    # the gauge sums the live workers; a stopped one leaves it, its counts stay
    assert metric(text, "workbench_models_loaded") == 3
    mark_process_dead(pids[1], str(tmp_path))
    text = multiprocess_exposition(str(tmp_path)).decode()
    assert metric(text, "workbench_models_loaded") == 1
    assert metric(text, "workbench_requests_total", **one) == 14


@pytest.mark.slow
@pytest.mark.serial  # both server workers must take connections: alone
def test_workbench_serve_with_two_workers_sums_both_in_every_scrape(home: Path) -> None:
    register()
    with store_session() as s:
        dep.deploy("churn", 1, session=s)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), "--workers", "2",
         "--no-monitor"], cwd=ROOT, env={**os.environ, "WORKBENCH_HOME": str(home)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        (shared,) = (home / "serve-metrics").iterdir()
        sent = _load_until_both_workers_counted(url, shared)
        # each worker adds its counts to the shared files at its telemetry flush (every
        # second) and before it answers a scrape: the other's last second comes within one
        deadline = time.monotonic() + 10
        while metric(httpx.get(f"{url}/metrics", timeout=10).text, "workbench_requests_total",
                     model="churn", version="1") != sent:
            assert time.monotonic() < deadline, "a worker's counts never reached the scrape"
            time.sleep(0.2)
        for _ in range(6):  # separate connections: each scrape may reach either worker
            text = httpx.get(f"{url}/metrics", timeout=10).text
            assert metric(text, "workbench_requests_total", model="churn", version="1") == sent
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not shared.exists()  # removed when the server stops


def _load_until_both_workers_counted(url: str, shared: Path) -> int:
    """Requests on new connections (each accepted by whichever worker wakes first) until a
    counter file of each worker exists; returns how many predictions were answered."""
    sent = 0
    deadline = time.monotonic() + 60
    while len(list(shared.glob("counter_*.db"))) < 2 or sent < 20:
        assert time.monotonic() < deadline, "one worker took every connection"
        r = httpx.post(f"{url}/v1/models/churn/predict", json={"records": [record(sent)]},
                       timeout=10)
        assert r.status_code == 200, r.text
        sent += 1
    return sent




