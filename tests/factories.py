"""Builders shared by the tests: paths, small fitted pipelines registered as versions, request
records, store snapshots, thread races and the real app on a port. One module, so tests never
import each other (a test module is what pytest collects, not a library)."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sqlmodel import Session, SQLModel, func, select

from app.cli_common import forget_databases
from app.workers import stop_spawned_workers
from core.automl.request import TrainingRequest
from core.jobs import ledger
from core.registry import list_versions, register_version
from core.registry.importer import import_model
from core.settings import get_settings, reset_settings
from core.store import Database
from core.usecases import training

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
WINE = DATA / "wine.csv"
CANCER = DATA / "breast_cancer.csv"


# -- homes ----------------------------------------------------------------------------------
def forget_stores() -> None:
    """Drop every store a previous test built (the CLI keeps one per database URL)."""
    forget_databases()


@contextmanager
def at_home(path: Path) -> Iterator[Path]:
    """This process's environment, settings and stores point at the SQLite home `path`
    inside the block, and at whatever they were before after it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(path))
        mp.delenv("DATABASE_URL", raising=False)
        reset_settings()
        forget_stores()
        try:
            yield path
        finally:
            forget_stores()
    reset_settings()


@contextmanager
def built_home(tmp_path_factory: pytest.TempPathFactory, name: str, *,
               start: Path | None = None) -> Iterator[Path]:
    """A WORKBENCH_HOME that a module builds once, inside this block (from a copy of `start`
    if given): the environment and settings point at it until the block ends. Tests then
    work on copies of it (`copy_home`), so what one test changes no other sees."""
    path = tmp_path_factory.mktemp(name) / "home"
    if start is not None:
        copy_home(start, path)
    with at_home(path):
        yield path
    db_file = path / "workbench.db"
    if db_file.is_file():  # everything into the database file itself, for clean copies
        with closing(sqlite3.connect(db_file)) as conn:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def copy_home(template: Path, home: Path) -> Path:
    """A copy of a built home (SQLite database, artifacts, data): every stored path is
    relative to the home, so the copy is a store of its own. SQLite rebuilds its shared-memory
    index for the copy."""
    if home.exists() and {p.name for p in home.iterdir()} == {"workbench.db"}:
        shutil.rmtree(home)  # the `home` fixture's unopened starting store: replaced whole
    if home.exists():
        raise RuntimeError(f"{home} exists already: request the built home's fixture before "
                           "`db` or `session`, which open (and so create) the store")
    shutil.copytree(template, home, ignore=shutil.ignore_patterns("*-shm"))
    return home


# -- files and the store as a user sees them ------------------------------------------------
@contextmanager
def store_session() -> Iterator[Session]:
    """A session on the current home's store through a `Database` of its own, disposed after,
    as a short command in another process would: no engine outlives the call, so a test that
    then damages or reopens the store sees exactly what a new process sees."""
    db = Database()
    try:
        with Session(db.engine, expire_on_commit=False) as s:
            yield s
    finally:
        db.dispose()


def store_snapshot() -> dict[str, object]:
    """Row counts of every table plus the artifact files on disk: equal snapshots mean a
    failed command wrote nothing."""
    with store_session() as s:
        counts = {table.name: s.exec(select(func.count()).select_from(table)).one()
                  for table in SQLModel.metadata.sorted_tables}
    root = get_settings().artifact_dir
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) \
        if root.exists() else []
    return {"rows": counts, "files": files}


def write(path: Path, content: str | bytes) -> Path:
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path


# -- "churn": a binary model over two numbers and a plan (deploy, serving, API tests) --------
SCHEMA = [{"name": "a", "kind": "numeric", "dtype": "float64"},
          {"name": "b", "kind": "numeric", "dtype": "float64"},
          {"name": "plan", "kind": "categorical", "dtype": "object"}]
PLANS = ["basic", "plus", "pro"]


def training_frame(seed: int = 0, n: int = 120) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n),
                      "plan": rng.choice(PLANS, size=n)})
    y = np.where(X["a"] + 0.3 * (X["plan"] == "pro") + 0.1 * rng.normal(size=n) > 0,
                 "yes", "no")
    return X, y


def register(name: str = "churn", *, seed: int = 0, strict_categories: bool = False,
             with_dataset: bool = False):
    """A real pipeline; with `strict_categories` its encoder refuses plans it never saw, so
    a record with plan='gold' makes this version fail at predict time (an injected fault made
    of data, not of mocks). `with_dataset`: its training table ingested as its dataset."""
    X, y = training_frame(seed)
    dataset_id = None
    if with_dataset:
        from core.data.datasets import ingest_path

        get_settings().home.mkdir(parents=True, exist_ok=True)
        csv = write(get_settings().home / f"{name}-{seed}.csv",
                    X.assign(y=y).to_csv(index=False))
        with store_session() as s:
            dataset_id = ingest_path(csv, session=s).dataset.id
    encoder = OneHotEncoder(handle_unknown="error" if strict_categories else "ignore")
    pre = ColumnTransformer([("num", StandardScaler(), ["a", "b"]), ("cat", encoder, ["plan"])])
    pipe = make_pipeline(pre, LogisticRegression()).fit(X, y)
    with store_session() as s:
        return register_version(pipe, session=s, name=name, task="binary", target="y",
                                input_schema=SCHEMA, classes=["no", "yes"], metric="roc_auc",
                                score=0.9, dataset_id=dataset_id)


def record(i: int = 0, plan: str = "basic") -> dict:
    return {"a": (i % 7) / 3 - 1, "b": 0.5, "plan": plan}


# -- a binary model over two numbers only (registry tests) -----------------------------------
NUMERIC_SCHEMA = [{"name": "a", "kind": "numeric", "dtype": "float64"},
                  {"name": "b", "kind": "numeric", "dtype": "float64"}]


def numeric_pipeline(seed: int = 0):
    """A fitted scaler + logistic regression over columns a, b, and the frame it saw."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(60, 2)), columns=["a", "b"])
    y = np.where(X["a"] + 0.1 * rng.normal(size=60) > 0, "yes", "no")
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y), X


def register_numeric(s: Session, name: str = "churn", seed: int = 0, **kw):
    """`numeric_pipeline(seed)` registered as the next version of `name` (score 0.9 + seed/100)."""
    pipe, _ = numeric_pipeline(seed)
    return register_version(pipe, session=s, name=name, task="binary", target="y",
                            input_schema=NUMERIC_SCHEMA, classes=["no", "yes"],
                            metric="roc_auc", score=0.9 + seed / 100, **kw)


# -- a slow estimator for the budget tests (an outer edge: it sleeps) -----------------------
class SleepyClassifier(ClassifierMixin, BaseEstimator):
    """A logistic regression whose fit sleeps `seconds` when given more than `over_rows` rows:
    a fit far longer than any budget (every fold, or only the final refit)."""

    def __init__(self, seconds: float = 600.0, over_rows: int = 0):
        self.seconds = seconds
        self.over_rows = over_rows

    def fit(self, X, y):
        if len(X) > self.over_rows:
            time.sleep(self.seconds)
        self.model_ = LogisticRegression(max_iter=500).fit(X, y)
        self.classes_ = self.model_.classes_
        return self

    def predict_proba(self, X):
        return self.model_.predict_proba(X)

    def predict(self, X):
        return self.model_.predict(X)


# -- an imported model ----------------------------------------------------------------------
def import_wine(session: Session, tmp_path: Path) -> int:
    """A scikit-learn pipeline trained elsewhere, imported as the next version of `wine`."""
    frame = pd.read_csv(WINE)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(
        frame.drop(columns=["cultivar"]), frame["cultivar"])
    sio.dump(pipe, tmp_path / "outside.skops")
    return import_model("wine", tmp_path / "outside.skops", session=session).version


# -- sign-in (the throttle tests) ----------------------------------------------------------
@contextmanager
def signin_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The REST app (a TestClient) over the current home's store, with one viewer `ann`
    (password `password-1`), hashed at the cheapest cost: the sign-in throttle tests'."""
    from fastapi.testclient import TestClient

    from app.api import create_app
    from core.identity.users import add_user

    monkeypatch.setenv("WORKBENCH_PASSWORD_HASH_COST", "cheapest")
    db = Database()
    try:
        with Session(db.engine) as s:
            add_user("ann", "password-1", role="viewer", session=s)
        with TestClient(create_app(background=False, db=db)) as c:
            yield c
    finally:
        db.dispose()


# -- jobs -----------------------------------------------------------------------------------
def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def submit(session: Session, data: object, target: str, **options: object):
    """Queue a training request as the CLI's `submit` does."""
    request = TrainingRequest.create(dataset=data, target=target, **options)
    return training.submit(request, session=session)


def state(session: Session, job_id: int) -> str:
    return ledger.get_job(job_id, session=session).state


def trials_done(session: Session, job_id: int) -> int:
    return ledger.get_job(job_id, session=session).progress.get("trials_done") or 0


def list_versions_or_empty(session: Session, name: str) -> list:
    try:
        return list_versions(name, session=session)
    except Exception:
        return []


def start_worker(home: Path, procs: list[subprocess.Popen], *args: str) -> subprocess.Popen:
    """A real `workbench worker` process logging beside `home`, appended to `procs`."""
    log = open(home.parent / f"worker{len(procs)}.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "app", "worker", *args], cwd=ROOT,
                            env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)
    procs.append(proc)
    return proc


# -- races ----------------------------------------------------------------------------------
def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at once (one thread each, released by a barrier); each result is the
    call's return value or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[i] = calls[i]()
        except Exception as exc:  # the loser's answer, checked by the caller
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


# -- the real app on a port (browser tests) -------------------------------------------------
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 90) -> None:
    """Until `url`/health answers 200; the server's own output if it dies or never does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            if proc.poll() is None:  # its output ends only when it does: stop it first
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
            stream = proc.stdout or proc.stderr
            out = stream.read().decode() if stream else ""
            raise RuntimeError(f"the server did not answer /health within {timeout:.0f} s "
                               f"(exit code {proc.returncode}): {out}")
        time.sleep(0.2)


@contextmanager
def running_app(home: Path) -> Iterator[str]:
    """`streamlit run` of the real app on a free loopback port with its own WORKBENCH_HOME."""
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {CHROMIUM} is missing")
        pytest.skip("no system chromium")
    home.parent.mkdir(parents=True, exist_ok=True)
    port = free_port()
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
        try:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:  # a loaded machine, or a stuck script run
                proc.kill()
                proc.wait(timeout=10)
        finally:
            log.close()
            stop_spawned_workers(home)  # workers the app started run in their own session


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample of a Prometheus scrape (None when it is absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v
                                           for k, v in labels.items()):
                return sample.value
    return None


# -- "visits": a table with a date that drifts with the outcome (issue 14, defect 8) ---------
def visits(n: int = 160) -> pd.DataFrame:
    """Clinic visits over time: the outcome drifts with the visit date (a new form, a new
    season), so the date 'predicts' it through the order rows were collected in."""
    rng = np.random.default_rng(0)
    days = pd.date_range("2024-01-01", periods=n, freq="D")
    x = rng.normal(size=n)
    late = np.arange(n) > n // 2
    y = np.where(x + 2.0 * late + rng.normal(scale=0.5, size=n) > 1.0, "yes", "no")
    return pd.DataFrame({"visit_date": days.strftime("%Y-%m-%d"), "x": x, "returned": y})


def store_at(revision: str, inserts: list[str]) -> None:
    """A store as an older release left it: migrated to `revision`, holding these rows (the
    upgrade tests of every migration start from one)."""
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from core.store.db import MIGRATIONS_DIR, make_engine

    engine = make_engine(get_settings().db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        for sql in inserts:
            conn.execute(text(sql))
    engine.dispose()
