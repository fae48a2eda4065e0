"""A real `uvicorn` server with two worker processes on loopback: sticky routing agrees across
workers, percentage changes and a rollback (the kill switch) reach every worker within a second
of being acknowledged (at once on this machine: core/deploy/generation.py), and no request
fails while the percentage moves 0 → 10 → 50 → 100 and back by rollback under load."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session

from core.deploy import deployments as dep
from tests.factories import ROOT, free_port, record, register, store_session, wait_healthy

# live traffic read in 1-s windows after each change: alone, not beside a parallel worker
pytestmark = [pytest.mark.slow, pytest.mark.serial]






@pytest.fixture
def server(home: Path) -> Iterator[str]:
    register()
    register(seed=1)
    with store_session() as _s:
        dep.deploy("churn", 1, session=_s)
    port = free_port()
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_STATE_REFRESH_S": "0.5"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.api:app_factory", "--factory", "--workers", "2",
         "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_rollout_and_rollback_under_load_across_two_workers(server: str) -> None:
    keys = [f"user-{i}" for i in range(200)]
    failures: list[str] = []
    seen: list[tuple[float, str, int]] = []  # (sent at, key, version)
    stop = threading.Event()

    def load(offset: int) -> None:
        with httpx.Client(base_url=server, timeout=10) as c:
            i = offset
            while not stop.is_set():
                key = keys[i % len(keys)]
                i += 7
                sent = time.monotonic()
                try:
                    r = c.post("/v1/models/churn/predict",
                               json={"records": [record(i)], "request_key": key})
                    if r.status_code != 200:
                        failures.append(f"{r.status_code} {r.text[:200]}")
                        continue
                    seen.append((sent, key, int(r.headers["X-Model-Version"])))
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))

    threads = [threading.Thread(target=load, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    # (began, acknowledged, percent now): a change takes effect when it commits, between the
    # two, so a step's requests are those sent from 1 s after its acknowledgement until the
    # next change began (not until that one was acknowledged: it may be in force already)
    changes: list[tuple[float, float, float]] = []

    def change(percent: float, do: Callable[[Session], object]) -> None:
        began = time.monotonic()
        with store_session() as s:
            do(s)
        changes.append((began, time.monotonic(), percent))
        time.sleep(2.0)

    try:
        time.sleep(1.0)
        change(10, lambda s: dep.deploy("churn", 2, 10, session=s))
        change(50, lambda s: dep.set_percent("churn", 50, session=s))
        change(100, lambda s: dep.set_percent("churn", 100, session=s))
        change(0, lambda s: dep.rollback("churn", reason="kill switch under load", session=s))
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert len(seen) > 200

    def settled(i: int, after: float = 1.0) -> list[tuple[str, int]]:
        """Requests sent from `after` s after change i was acknowledged until the next
        began (a second for a new candidate to load in every worker)."""
        end = changes[i + 1][0] if i + 1 < len(changes) else float("inf")
        return [(k, v) for t, k, v in seen if changes[i][1] + after <= t < end]

    by_step = {p: settled(i) for i, (_, _, p) in enumerate(changes)}
    # the kill switch loads nothing: every request sent once it is acknowledged is stable's
    by_step[0] = settled(len(changes) - 1, after=0.0)
    assert all(v == 1 for _, v in by_step[0]) and by_step[0]       # rollback: all stable
    assert all(v == 2 for _, v in by_step[100]) and by_step[100]   # 100 %: all candidate
    for p in (10, 50):                                            # sticky across workers
        versions: dict[str, set[int]] = {}
        for k, v in by_step[p]:
            versions.setdefault(k, set()).add(v)
        assert all(len(vs) == 1 for vs in versions.values())
    on10 = {k for k, v in by_step[10] if v == 2}
    assert on10 and all(v == 2 for k, v in by_step[50] if k in on10)


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of the live child processes of `pid`, from /proc."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                cmd = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                out.append((int(stat.parent.name), cmd))
        except (OSError, IndexError, ValueError):
            continue
    return out


def test_workbench_serve_runs_the_monitor_beside_the_server_and_stops_it(home: Path) -> None:
    port = free_port()
    env = {**os.environ, "WORKBENCH_HOME": str(home)}
    proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc)
        (monitor,) = [p for p, cmd in _children(proc.pid) if "--monitor-only" in cmd]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{monitor}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not Path(f"/proc/{monitor}").exists()  # stopped with the server
