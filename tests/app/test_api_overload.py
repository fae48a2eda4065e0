"""Load shedding: past the bound of pending predictions a server answers 503 + Retry-After at
once, and every request it admitted is still answered.

The queue is held full without timing: with WORKBENCH_BATCH_MAX_ROWS=1 every 2-row request is
scored on the predict thread, and that thread is kept busy until the test lets it go, so the
admitted requests stay pending while the rest arrive."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.api import create_app
from core.deploy import deployments as dep
from tests.factories import metric, record, register, store_session

EXTRA = 5  # requests beyond the bound


@pytest.mark.serial  # a held predict thread and a burst: alone (a stale read once waited)
@pytest.mark.parametrize(("setting", "bound", "admitted"), [
    ("WORKBENCH_MAX_PENDING_REQUESTS", 4, 4),  # 4 requests pending
    ("WORKBENCH_MAX_PENDING_ROWS", 5, 3),      # 2-row requests: 0, 2, 4 rows pending → admitted
])
def test_requests_past_the_bound_get_503_with_retry_after(
        home: Path, monkeypatch: pytest.MonkeyPatch, setting: str, bound: int,
        admitted: int) -> None:
    register()
    with store_session() as _s:
        dep.deploy("churn", 1, session=_s)
    for var in ("WORKBENCH_MAX_PENDING_REQUESTS", "WORKBENCH_MAX_PENDING_ROWS"):
        monkeypatch.setenv(var, "0")  # only the bound under test
    monkeypatch.setenv(setting, str(bound))
    monkeypatch.setenv("WORKBENCH_BATCH_MAX_ROWS", "1")
    # the longest refresh period: a state gone stale between the first answer and the burst is
    # read again inline (no background refresher here), and that read waited behind the held
    # predict thread on a loaded machine (seen once; noted in the session's closing note)
    monkeypatch.setenv("WORKBENCH_STATE_REFRESH_S", "1.0")
    body = {"records": [record(1), record(2, "pro")]}
    with TestClient(create_app(background=False)) as client:
        serving = client.app.state.serving
        expected = client.post("/v1/models/churn/predict", json=body).json()["predictions"]
        release = threading.Event()
        serving.predict_pool.submit(release.wait, 60)  # the predict thread is busy
        answers: list = []

        def call() -> None:
            answers.append(client.post("/v1/models/churn/predict", json=body))

        threads = [threading.Thread(target=call) for _ in range(admitted + EXTRA)]
        try:
            for t in threads:
                t.start()
            deadline = time.monotonic() + 30  # a guard against hanging, not a timed assertion
            while len(answers) < EXTRA and time.monotonic() < deadline:
                time.sleep(0.02)
            refused = list(answers)
            assert len(refused) == EXTRA
            assert serving.batcher.pending_requests == admitted  # still queued, not failed
        finally:
            release.set()
            for t in threads:
                t.join(timeout=60)
        assert len(answers) == admitted + EXTRA
        for r in refused:
            assert r.status_code == 503, r.text
            assert r.headers["Retry-After"].isdigit() and int(r.headers["Retry-After"]) >= 1
            doc = r.json()
            assert set(doc) == {"error", "detail"} and doc["error"] == "overloaded"
            assert setting in doc["detail"]
        served = [r for r in answers if r.status_code != 503]
        assert len(served) == admitted
        assert all(r.status_code == 200 and r.json()["predictions"] == expected for r in served)
        # under the bound again: answered as usual; a refusal is no version's failure
        assert client.post("/v1/models/churn/predict", json=body).status_code == 200
        assert client.post("/invocations", json={"dataframe_records": body["records"]}
                           ).status_code == 200
        assert serving.batcher.pending_requests == serving.batcher.pending_rows == 0
        scrape = client.get("/metrics").text
        assert metric(scrape, "workbench_request_errors_total", model="churn", version="1") == 0
        assert metric(scrape, "workbench_requests_total", model="churn", version="1") == \
            1 + admitted + 2  # the refused ones never reached the version


def test_the_bound_is_a_setting_with_a_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from core.settings import get_settings

    monkeypatch.delenv("WORKBENCH_MAX_PENDING_REQUESTS", raising=False)
    monkeypatch.delenv("WORKBENCH_MAX_PENDING_ROWS", raising=False)
    s = get_settings()
    assert s.max_pending_requests > 32 and s.max_pending_rows >= s.batch_max_rows
    monkeypatch.setenv("WORKBENCH_MAX_PENDING_ROWS", "100")
    assert get_settings().max_pending_rows == 100


def test_evaluations_past_their_bound_get_503_and_predictions_go_on(home: Path) -> None:
    """evaluate/compare score whole labelled tables on request threads: while two run in a
    process, a third is refused at once instead of starving the predictions."""
    register()
    with store_session() as _s:
        dep.deploy("churn", 1, session=_s)
    labelled = [{**record(i), "y": "yes" if i % 2 else "no"} for i in range(20)]
    with TestClient(create_app(background=False)) as client:
        serving = client.app.state.serving
        with serving.evaluation_slot(), serving.evaluation_slot():  # two long evaluations
            for path, body in (("/v1/models/churn/evaluate", {"records": labelled}),
                               ("/v1/models/compare", {"versions": ["churn:1"],
                                                       "records": labelled})):
                refused = client.post(path, json=body)
                assert refused.status_code == 503, refused.text
                assert refused.json()["error"] == "overloaded"
                assert refused.headers["Retry-After"].isdigit()
            assert client.post("/v1/models/churn/predict",
                               json={"records": [record()]}).status_code == 200
        assert client.post("/v1/models/churn/evaluate",
                           json={"records": labelled}).status_code == 200
