"""`workbench serve --workers N`: N worker processes, each listening on its own SO_REUSEPORT
socket under a small supervisor (app/serve_workers.py). What a user relies on: every worker
answers, a deployment change reaches all of them, each prediction is logged exactly once,
SIGTERM stops them all, and a worker that cannot start stops the server with a message."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import select

from app.serve_workers import reuse_port_works
from core.deploy import deployments as dep
from core.store import PredictionLog
from tests.factories import ROOT, free_port, record, register, store_session, wait_healthy

pytestmark = pytest.mark.skipif(not reuse_port_works(), reason="no SO_REUSEPORT here: "
                                "`serve --workers` keeps uvicorn's own supervisor")


def _children(pid: int) -> set[int]:
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.add(int(stat.parent.name))
    return out


def _one_client_per_worker(url: str, workers: int) -> dict[int, httpx.Client]:
    """Keep-alive clients (one connection each) until every worker has one: new connections
    land on a worker by the kernel's hash, so a few tries reach each."""
    clients: dict[int, httpx.Client] = {}
    deadline = time.monotonic() + 60
    while len(clients) < workers:
        assert time.monotonic() < deadline, f"only workers {sorted(clients)} took connections"
        c = httpx.Client(base_url=url, timeout=30, limits=httpx.Limits(max_connections=1))
        pid = c.get("/health").json()["pid"]
        if pid in clients:
            c.close()
        else:
            clients[pid] = c
    return clients


def _predict(c: httpx.Client, i: int) -> dict:
    r = c.post("/v1/models/churn/predict", json={"records": [record(i)]})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.slow
@pytest.mark.serial  # two server processes starting and taking connections: alone
def test_two_workers_answer_share_deployment_state_log_once_and_stop_together(
        home: Path) -> None:
    register()
    register(seed=1)
    with store_session() as s:
        dep.deploy("churn", 1, session=s)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "serve", "--port", str(port), "--workers", "2",
         "--no-monitor"], cwd=ROOT, env={**os.environ, "WORKBENCH_HOME": str(home)},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    sent: list[str] = []
    clients: dict[int, httpx.Client] = {}
    try:
        wait_healthy(url, proc, timeout=300)
        workers = _children(proc.pid)
        assert len(workers) == 2
        clients = _one_client_per_worker(url, 2)
        assert set(clients) == workers  # /health's pid is the worker's
        for c in clients.values():
            for i in range(5):
                answer = _predict(c, i)
                assert answer["version"] == 1
                sent.append(answer["request_id"])
        with store_session() as s:  # another process changes the deployment
            dep.deploy("churn", 2, session=s)
            dep.promote("churn", session=s)
        for pid, c in clients.items():  # each worker reads the change from the store
            deadline = time.monotonic() + 60
            while True:
                answer = _predict(c, 0)
                sent.append(answer["request_id"])
                if answer["version"] == 2:
                    break
                assert time.monotonic() < deadline, f"worker {pid} still answers version 1"
                time.sleep(0.2)
            assert c.get("/health").json()["pid"] == pid  # same connection, same worker
    finally:
        for c in clients.values():
            c.close()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=120)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
    assert code == 0, stderr
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)  # no orphan worker
    with store_session() as s:  # each worker flushed its log on the way out: every
        logged = s.exec(select(PredictionLog.request_id)).all()  # request once, no other
    assert sorted(logged) == sorted(sent)
    assert len(set(sent)) == len(sent)


@pytest.mark.slow
def test_serve_workers_refuses_a_port_in_use_with_a_message(home: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "app", "serve", "--port", str(port), "--workers", "2",
             "--no-monitor"], cwd=ROOT, env={**os.environ, "WORKBENCH_HOME": str(home)},
            capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "--port" in done.stderr  # what to do about it


BROKEN = """
import sys
from app.serve_workers import Supervisor
sys.exit(Supervisor("127.0.0.1", int(sys.argv[1]), 2, app="app.api:no_such_factory").run())
"""


@pytest.mark.slow
def test_a_worker_that_cannot_start_stops_the_server_non_zero(home: Path) -> None:
    """The supervisor over workers whose app cannot be loaded (any failure at start looks
    the same to it): exit 1, saying so, and no worker left behind."""
    done = subprocess.run([sys.executable, "-c", BROKEN, str(free_port())], cwd=ROOT,
                          env={**os.environ, "WORKBENCH_HOME": str(home)},
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert "before it started: stopping the server" in done.stderr
    assert "no_such_factory" in done.stderr  # the worker's own reason, above it
