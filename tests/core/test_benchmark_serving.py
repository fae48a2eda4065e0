"""bench/serving.py's pieces that decide what a run means: the V2 pandas-codec request it
sends MLServer (and our /v2 endpoint), and the PASS/FAIL verdicts against the issue's targets.
No server is started and nothing is timed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "serving.py"


@pytest.fixture(scope="module")
def serving():
    spec = importlib.util.spec_from_file_location("bench_serving", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_v2_request_is_a_pandas_codec_document_of_the_same_rows(serving):
    X, _ = serving.make_data(n=20)
    records = json.loads(X.iloc[:7].to_json(orient="records"))
    doc = serving.v2_pandas_request(records)

    assert doc["parameters"] == {"content_type": "pd"}
    assert "outputs" not in doc  # MLServer then answers `predict`, like /invocations
    assert [i["name"] for i in doc["inputs"]] == list(X.columns)  # one input per column
    kinds = {i["name"]: i["datatype"] for i in doc["inputs"]}
    assert {kinds[c] for c in X.columns if c.startswith("cat")} == {"BYTES"}
    assert {kinds[c] for c in X.columns if c.startswith("num")} == {"FP64"}
    for i in doc["inputs"]:
        assert i["shape"] == [7] and len(i["data"]) == 7
    # the columns put back together are the rows sent (what the pandas codec decodes)
    back = pd.DataFrame({i["name"]: i["data"] for i in doc["inputs"]})
    pd.testing.assert_frame_equal(back, X.iloc[:7].reset_index(drop=True), check_dtype=False)
    json.dumps(doc)  # plain JSON, no NumPy scalars


def test_v2_answer_reader_takes_the_predict_output(serving):
    body = {"model_name": "bench", "outputs": [
        {"name": "predict_proba", "shape": [2, 2], "datatype": "FP64", "data": [0.1] * 4},
        {"name": "predict", "shape": [2, 1], "datatype": "BYTES", "data": ["yes", "no"]}]}
    assert serving.ENDPOINTS["v2"][2](body) == ["yes", "no"]


def _cell(rps: float, rows: int = 1, p50: float = 1.0, p99: float = 5.0) -> dict:
    return {"rps": rps, "rows_per_s": rps * rows, "p50_ms": p50, "p99_ms": p99}


def _verdicts(serving, servers: dict, workers=(1, 2, 4)) -> dict:
    return {v["target"]: v for v in serving.target_verdicts(servers, list(workers))}


def test_100_row_target_against_mlserver_needs_ten_times_at_c8_and_c32(serving):
    ours = {"100row_c8": _cell(100, 100), "100row_c32": _cell(100, 100)}
    label = "100-row rows/s >= 10x MLServer"
    passing = {"workbench /invocations": ours,
               serving.MLSERVER: {"100row_c8": _cell(10, 100), "100row_c32": _cell(9, 100)}}
    failing = {"workbench /invocations": ours,
               serving.MLSERVER: {"100row_c8": _cell(10, 100), "100row_c32": _cell(11, 100)}}
    assert _verdicts(serving, passing)[label]["verdict"] == "PASS"
    v = _verdicts(serving, failing)[label]
    assert v["verdict"] == "FAIL" and v["cells"]["100row_c32"]["ok"] is False


def test_our_v2_endpoint_is_the_one_compared_with_mlserver_when_it_exists(serving):
    servers = {"workbench /invocations": {"100row_c8": _cell(1000, 100)},
               "workbench /v2 infer": {"100row_c8": _cell(50, 100)},
               serving.MLSERVER: {"100row_c8": _cell(10, 100)}}
    v = _verdicts(serving, servers)["100-row rows/s >= 10x MLServer"]
    assert v["ours"] == "workbench /v2 infer" and v["verdict"] == "FAIL"


def test_workers_target_compares_two_workers_with_one_at_1_row_c32(serving):
    one = {"1row_c32": _cell(1000)}
    label = "--workers 2 >= 1.7x one worker's req/s"
    servers = {"workbench /invocations": one,
               "workbench /invocations, 2 workers": {"1row_c32": _cell(1650)}}
    assert _verdicts(serving, servers)[label]["verdict"] == "FAIL"
    servers["workbench /invocations, 2 workers"] = {"1row_c32": _cell(1750)}
    assert _verdicts(serving, servers)[label]["verdict"] == "PASS"
    # not judged when the first server is not a single worker
    assert _verdicts(serving, servers, workers=(2, 4))[label]["verdict"] == "skipped"


def test_a_target_whose_peer_was_not_run_is_skipped_not_passed(serving):
    v = _verdicts(serving, {"workbench /invocations": {"1row_c8": _cell(1000)}})
    assert v["1-row throughput >= 10x MLflow"]["verdict"] == "skipped"
    assert v["100-row rows/s >= 10x MLServer"]["verdict"] == "skipped"


def test_a_target_none_of_whose_cells_was_run_is_skipped_not_failed(serving):
    """A run at concurrency 32 only has no c=1 cell: the p50-at-c=1 target is not judged."""
    v = _verdicts(serving, {"workbench /invocations": {"1row_c32": _cell(1000)}})
    assert v["1-row p50 <= 2 ms at concurrency 1"]["verdict"] == "skipped"
    v = _verdicts(serving, {"workbench /invocations": {"1row_c1": _cell(1000, p50=2.5)}})
    assert v["1-row p50 <= 2 ms at concurrency 1"]["verdict"] == "FAIL"


def test_a_cell_of_several_rounds_is_its_median_round(serving):
    """--rounds N: a cell's figures are one whole round's (the median by req/s, the lower of
    the middle two), never a mix of rounds; every round's req/s is kept beside them."""
    runs = [{"rps": r, "p99_ms": p} for r, p in ((300.0, 9.0), (100.0, 50.0), (200.0, 20.0))]
    cell = serving.median_run(runs)
    assert (cell["rps"], cell["p99_ms"]) == (200.0, 20.0)
    assert cell["rounds_rps"] == [300.0, 100.0, 200.0]
    assert serving.median_run(runs[:2])["rps"] == 100.0
    assert serving.median_run(runs[:1])["rounds_rps"] == [300.0]
