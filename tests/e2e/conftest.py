"""Start the real app (`streamlit run`) on a free loopback port with its own WORKBENCH_HOME,
and point pytest-playwright at Debian's chromium (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "tests" / "e2e" / "screenshots"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e") / "home"


@contextmanager
def running_app(home: Path) -> Iterator[str]:
    """`streamlit run` of the real app on a free loopback port with its own WORKBENCH_HOME."""
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {CHROMIUM} is missing")
        pytest.skip("no system chromium")
    home.parent.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {**os.environ, "WORKBENCH_HOME": str(home), "WORKBENCH_HEARTBEAT_S": "1"}
    env.pop("DATABASE_URL", None)
    log = open(home.parent / "server.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run",
                             str(ROOT / "streamlit_app.py"), "--server.headless=true",
                             "--server.address=127.0.0.1", f"--server.port={port}",
                             "--browser.gatherUsageStats=false", "--server.fileWatcherType=none"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    url, deadline = f"http://127.0.0.1:{port}", time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(url + "/_stcore/health", timeout=1).read() == b"ok":
                break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        raise RuntimeError((home.parent / "server.log").read_text())
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()
        from app.workers import stop_spawned_workers

        stop_spawned_workers(home)  # workers the app started run in their own session


@pytest.fixture(scope="session")
def app_url(app_home: Path) -> Iterator[str]:
    with running_app(app_home) as url:
        yield url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync"]}


@pytest.fixture
def shot(page):
    SHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> None:
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    return take
