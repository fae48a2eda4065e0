"""`"runtime": "onnx" | "python" | "auto"` per deployed version: onnxruntime answers what the
python path answers (labels equal, probabilities within the parity tolerance), `onnx` is
refused for a version without a passed parity check (REST 409, CLI exit 2, saying to export
first), a canary can run python against onnx, `GET /v1/models/{name}` says which runtime
answered and why, and the choice is stored with the deployment (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

pytest.importorskip("skl2onnx", reason="the onnx runtime needs the extra `onnx` (pip install "
                                       "-e '.[onnx]')")
pytest.importorskip("onnxruntime", reason="the onnx runtime needs onnxruntime (extra `onnx`)")

from app.api import create_app  # noqa: E402
from app.cli import app  # noqa: E402
from core.deploy import deploy  # noqa: E402
from core.deploy.deployments import get_state  # noqa: E402
from core.onnx.export import export_onnx  # noqa: E402
from core.onnx.parity import ATOL, RTOL  # noqa: E402
from tests.factories import (  # noqa: E402
    built_home,
    copy_home,
    record,
    register,
    store_session,
)

ROWS = [record(i, plan) for i in range(7) for plan in ("basic", "plus", "pro")] + \
    [{"a": 0.2, "b": -1.0, "plan": "gold"}]  # a plan never seen in training


@pytest.fixture(scope="module")
def exported_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """churn:1 stable (exported: parity passed on its dataset's rows), churn:2 exported
    (parity on built rows), churn:3 never exported: built once, copied per test."""
    with built_home(tmp_path_factory, "onnx_runtime") as path:
        for seed in (0, 1, 2):
            register(seed=seed, with_dataset=seed == 0)
        with store_session() as s:
            deploy("churn", 1, 100, session=s)
            export_onnx("churn:1", session=s)
            export_onnx("churn:2", session=s)
    return path


@pytest.fixture
def client(exported_home: Path, home: Path) -> Iterator[TestClient]:
    copy_home(exported_home, home)
    with TestClient(create_app(background=False)) as c:
        yield c


def _deploy(c: TestClient, **body: object) -> dict:
    r = c.post("/v1/deployments/churn", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def _predict(c: TestClient, **extra: object) -> dict:
    r = c.post("/v1/models/churn/predict", json={"records": ROWS, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def _loaded(c: TestClient) -> dict[int, dict]:
    return {x["version"]: x for x in c.get("/v1/models/churn").json()["loaded_here"]}


def _same(python: dict, onnx: dict) -> None:
    assert onnx["predictions"] == python["predictions"]
    for p, o in zip(python["probabilities"], onnx["probabilities"], strict=True):
        assert p.keys() == o.keys()
        assert all(abs(o[k] - p[k]) <= ATOL + RTOL * abs(p[k]) for k in p)


def test_onnx_runtime_answers_as_python_and_says_so(client: TestClient) -> None:
    state = _deploy(client, version=1, runtime="python")  # the stable's runtime only
    assert state["stable"] == 1 and state["candidate"] is None
    assert state["runtimes"] == {"1": "python"}
    python = _predict(client)
    assert _loaded(client)[1]["runtime"] in ("lean", "scikit-learn")
    state = _deploy(client, version=1, runtime="onnx")
    assert state["runtimes"] == {"1": "onnx"}
    onnx = _predict(client)
    _same(python, onnx)
    here = _loaded(client)[1]
    assert here["runtime"] == "onnxruntime" and here["runtime_requested"] == "onnx"
    assert "onnx" in here["runtime_reason"]
    assert client.get("/v1/deployments/churn").json()["runtimes"] == {"1": "onnx"}


def test_onnx_is_refused_without_a_passed_parity_check(client: TestClient) -> None:
    r = client.post("/v1/deployments/churn", json={"version": 3, "percent": 10,
                                                   "runtime": "onnx"})
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "onnx_parity_required"
    assert "workbench export churn:3 --format onnx" in r.json()["detail"]
    assert client.get("/v1/deployments/churn").json()["candidate"] is None  # nothing changed
    out = CliRunner().invoke(app, ["deploy", "churn", "3", "--runtime", "onnx"])
    assert out.exit_code == 2 and "workbench export churn:3 --format onnx" in out.output
    assert client.post("/v1/deployments/churn", json={"version": 3, "runtime": "gpu"}
                       ).status_code == 422


def test_canary_between_python_and_onnx_runtimes(client: TestClient) -> None:
    _deploy(client, version=1, runtime="python")
    state = _deploy(client, version=2, percent=50, runtime="onnx")
    assert state["candidate"] == 2 and state["runtimes"] == {"1": "python", "2": "onnx"}
    answered = {_predict(client, request_key=f"k{i}")["version"] for i in range(30)}
    assert answered == {1, 2}
    here = _loaded(client)
    assert here[1]["runtime"] in ("lean", "scikit-learn") and here[2]["runtime"] == "onnxruntime"
    key = next(f"k{i}" for i in range(30) if _predict(client, request_key=f"k{i}")["version"]
               == 2)
    onnx = _predict(client, request_key=key)
    _deploy(client, version=2, percent=50, runtime="python")
    assert _loaded(client)[2]["runtime"] in ("lean", "scikit-learn")
    _same(_predict(client, request_key=key), onnx)


def test_auto_keeps_the_faster_runtime_and_says_why(client: TestClient) -> None:
    serving = client.app.state.serving
    pool = serving.side_pool
    pool.submit(lambda: None).result(timeout=60)  # start-up warming done
    serving.cache.unload("churn")  # evicted: the next request loads it cold
    release = threading.Event()
    pool.submit(release.wait, 60)  # the side pool, where auto times the runtimes, held
    _predict(client)  # a cold load of churn:1 (runtime auto) answers with python at once
    here = _loaded(client)[1]
    assert here["runtime"] == "lean" and "being chosen" in here["runtime_reason"]
    release.set()
    pool.submit(lambda: None).result(timeout=60)  # the choice has been made
    here = _loaded(client)[1]
    assert here["runtime_requested"] == "auto"
    assert here["runtime_reason"].startswith("auto:") and "µs" in here["runtime_reason"]
    faster = "onnxruntime is faster" in here["runtime_reason"]
    assert here["runtime"] == ("onnxruntime" if faster else "lean")


def test_auto_without_parity_is_python_and_says_how_to_export(client: TestClient) -> None:
    _deploy(client, version=3, percent=100)
    r = client.post("/v1/models/churn/predict", json={"records": ROWS[:2],
                                                      "request_key": "x"})
    assert r.status_code == 200
    here = _loaded(client)[3]
    assert here["runtime"] in ("lean", "scikit-learn")
    assert "workbench export churn:3 --format onnx" in here["runtime_reason"]


def test_the_choice_is_stored_with_the_deployment(backend_db: object) -> None:
    register()
    register(seed=1)
    with store_session() as s:
        deploy("churn", 1, 100, session=s, warm=None)
        export_onnx("churn:2", session=s)
        deploy("churn", 2, 20, session=s, warm=None, runtime="onnx")
        deploy("churn", 1, session=s, runtime="python")
    with store_session() as s:  # read back by a new session
        st = get_state("churn", session=s)
    assert st.runtimes == {"1": "python", "2": "onnx"}
    assert st.runtime_of(2) == "onnx" and st.runtime_of(7) == "auto"
    assert st.stable == 1 and st.candidate == 2 and st.percent == 20
