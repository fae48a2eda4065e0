"""Choosing a loaded version's runtime (core/deploy/onnx_runtime.py) off the request path:
only the latest request's choice is kept (a slow onnx choice that finishes after a switch to
python never answers), a cold load under `auto` answers with python at once and times the
runtimes in the side pool, and `auto` picks onnxruntime only for a parity check on the
version's own dataset rows. Interleavings are driven by Events holding the side pool."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

pytest.importorskip("skl2onnx", reason="the onnx runtime needs the extra `onnx`")
pytest.importorskip("onnxruntime", reason="the onnx runtime needs the extra `onnx`")

from core.deploy import deploy  # noqa: E402
from core.deploy.cache import ModelCache  # noqa: E402
from core.deploy.onnx_runtime import commit, decide, request  # noqa: E402
from core.deploy.service import Serving  # noqa: E402
from core.onnx.export import export_onnx  # noqa: E402
from core.store import Database  # noqa: E402
from tests.factories import record, register, store_session  # noqa: E402

ROUNDS = 3  # each builds and probes the graph once (~0.3 s)
ROWS = [record(i, plan) for i in range(4) for plan in ("basic", "pro")]


def _drain(pool: ThreadPoolExecutor) -> None:
    """Wait until everything queued on the one-thread pool before now has run."""
    pool.submit(lambda: None).result(timeout=60)


def _held(pool: ThreadPoolExecutor) -> threading.Event:
    """The pool's thread, busy until the returned Event is set."""
    release = threading.Event()
    pool.submit(release.wait, 60)
    return release


@pytest.fixture
def serving(db: Database) -> Iterator[Serving]:
    register(with_dataset=True)
    with store_session() as s:
        deploy("churn", 1, 100, session=s, warm=None)
        export_onnx("churn:1", session=s)
    serving = Serving(db)
    yield serving
    serving.stop()


def test_a_slow_onnx_choice_finishing_after_a_switch_to_python_is_dropped(serving: Serving
                                                                          ) -> None:
    st = serving.state("churn", fresh=True)
    as_onnx = st.model_copy(update={"runtimes": {"1": "onnx"}})
    as_python = st.model_copy(update={"runtimes": {"1": "python"}})
    _drain(serving.side_pool)
    lm = serving.cache.get("churn", 1)
    _drain(serving.side_pool)  # auto's own choice, made at load
    python_answer = lm.predict_records(ROWS)[0]
    for _ in range(ROUNDS):
        release = _held(serving.side_pool)
        serving.use_runtimes(as_onnx, wait=False)  # queued behind the held thread
        serving.use_runtimes(as_python)  # the operator backs out: python at once
        assert lm.onnx is None and lm.runtime_requested == "python"
        release.set()
        _drain(serving.side_pool)  # the onnx choice has now run to its end
        assert lm.onnx is None, lm.runtime_reason
        assert lm.runtime_requested == "python"
        assert lm.runtime_reason == "runtime python was asked for"
        assert lm.predict_records(ROWS)[0] == python_answer
        # control: the same queued choice, not overtaken, does switch to onnxruntime
        serving.use_runtimes(as_onnx, wait=False)
        _drain(serving.side_pool)
        assert lm.onnx is not None and "onnx was asked for" in lm.runtime_reason


def test_a_choice_decided_before_a_switch_is_not_committed_after_it(serving: Serving) -> None:
    """The same race with the onnx choice mid-way (decided, not yet committed)."""
    lm = serving.cache.get("churn", 1)
    for _ in range(ROUNDS):
        gen = request(lm, "onnx")
        runtime, reason = decide(lm, "onnx")  # the slow part, done
        assert runtime is not None
        python = request(lm, "python")
        assert python is not None
        assert not commit(lm, gen, runtime, reason)  # stale: dropped
        assert commit(lm, python, None, "runtime python was asked for")
        assert lm.onnx is None and lm.runtime_requested == "python"


def test_a_cold_load_under_auto_answers_with_python_before_the_timing(db: Database) -> None:
    register(with_dataset=True)
    with store_session() as s:
        deploy("churn", 1, 100, session=s, warm=None)
        assert export_onnx("churn:1", session=s).parity["rows_from"].startswith("the last")
    with ThreadPoolExecutor(1) as chooser:
        cache = ModelCache(db, chooser=chooser)
        release = _held(chooser)
        lm = cache.get("churn", 1)  # returns while the chooser cannot run
        assert lm.onnx is None and lm.runtime_requested == "auto"
        assert "being chosen" in lm.runtime_reason
        labels, proba = lm.predict_records(ROWS)  # python answers meanwhile
        assert len(labels) == len(ROWS) and proba is not None
        release.set()
        _drain(chooser)
        assert lm.runtime_reason.startswith("auto:") and "µs" in lm.runtime_reason
        assert (lm.onnx is not None) == ("onnxruntime is faster" in lm.runtime_reason)


def test_auto_keeps_python_when_parity_ran_on_built_rows(db: Database) -> None:
    register()  # no dataset: the export's parity check runs on rows built from the schema
    with store_session() as s:
        deploy("churn", 1, 100, session=s, warm=None)
        doc = export_onnx("churn:1", session=s).parity
    assert doc["passed"] and doc["rows_from"].startswith("rows built from the schema")
    lm = ModelCache(db).get("churn", 1)
    assert lm.onnx is None
    assert "not on held-out rows" in lm.runtime_reason and "runtime onnx" in lm.runtime_reason
