"""The local-worker supervisor: the app and the CLI start job workers for this home when none
is alive (the embedded default needs no extra command), and stop the ones they started.

Managing OS processes is an adapter's business, so it lives here, not in `core`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from core.jobs.worker import live_workers
from core.settings import get_settings
from core.store import Database
from core.usecases.worker import job_worker

STARTUP_S = 20.0  # a worker just spawned registers itself within this time
AUTOSTART_IDLE_EXIT_S = 900
SPAWNED_PIDS = "worker.pids"  # an auto-started worker exits when idle; the app restarts one
ROOT = Path(__file__).resolve().parents[1]

_thread_worker: threading.Thread | None = None


def ensure_local_worker(db: Database) -> int:
    """Start workers (up to max_concurrent_jobs) when none is alive. Returns how many were
    started.

    `WORKBENCH_WORKER_MODE=thread` (hosted demos without process control, e.g. Streamlit
    Community Cloud) runs one worker as a daemon thread of this process instead."""
    global _thread_worker
    settings = get_settings()
    if settings.worker_mode == "thread":
        if _thread_worker is not None and _thread_worker.is_alive():
            return 0
        _thread_worker = threading.Thread(target=job_worker(db).run, daemon=True,
                                          name="workbench-worker")
        _thread_worker.start()
        return 1
    with db.session() as s:
        missing = settings.max_concurrent_jobs - len(live_workers(session=s))
    marker = settings.home / "worker.starting"
    if missing <= 0 or (marker.exists() and time.time() - marker.stat().st_mtime < STARTUP_S):
        return 0  # enough workers, or some are still starting up (not yet registered)
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.touch()
    # The worker runs in this process's directory (so it reads the same .env) with an absolute
    # home: a relative WORKBENCH_HOME must name the same store, installed or from a checkout.
    env = {**os.environ, "WORKBENCH_HOME": str(settings.home),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                       os.environ.get("PYTHONPATH")]))}
    for _ in range(missing):
        log_path = settings.home / "worker.log"
        with open(log_path, "ab") as out:
            proc = subprocess.Popen([sys.executable, "-m", "app", "worker", "--idle-exit",
                                     str(AUTOSTART_IDLE_EXIT_S)], stdout=out,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=env)
        with open(settings.home / SPAWNED_PIDS, "a") as pids:  # so they can be stopped
            pids.write(f"{proc.pid}\n")
    return missing


def stop_spawned_workers(home: Path) -> int:
    """SIGTERM the workers this home's app/CLI started: a running job stops at its next check
    and ends CANCELLED ("stopped by SIGTERM"), nothing is registered, and the worker exits."""
    path, stopped = home / SPAWNED_PIDS, 0
    if not path.exists():
        return 0
    for line in path.read_text().split():
        try:
            os.kill(int(line), signal.SIGTERM)
            stopped += 1
        except (ProcessLookupError, ValueError, PermissionError):
            pass
    path.unlink(missing_ok=True)
    return stopped
