"""Rows sent as columns (the Open Inference Protocol's tensors, core/deploy/columns.py) score,
log and fail exactly as the same rows sent as records; the plain V2 body parse never accepts
what pydantic refuses (docs/serving/v2fast.md)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import orjson
import pytest
from pydantic import ValidationError

from app.api.oip import InferenceRequest, plain_request
from core.deploy.columns import Columns, join, number_array
from core.deploy.telemetry import _jsonable_rows
from core.errors import SchemaMismatchError
from tests.core.test_speed_lean import _general, _loaded, _odd_records


def _columns(records: list[dict]) -> Columns:
    names = list(records[0])
    assert all(list(r) == names for r in records)  # same keys, same order: a V2 request
    return Columns(names, [[r[k] for r in records] for k in names], len(records))


def _same_keys(records: list[dict]) -> list[dict]:
    names = list(records[0])
    return [{k: r.get(k) for k in names} for r in records]


def test_columns_read_as_the_records_they_hold() -> None:
    recs = [{"a": 1.0, "b": "x"}, {"a": None, "b": "y"}, {"a": 3, "b": None}]
    cols = _columns(recs)
    assert len(cols) == 3 and cols[1] == recs[1] and cols[-1] == recs[-1]
    assert cols[:2] == recs[:2] and list(cols) == recs and cols == recs
    with pytest.raises(IndexError):
        cols[3]
    both = join([cols, _columns(recs[:1])])
    assert isinstance(both, Columns) and both == recs + recs[:1]
    mixed = join([cols, recs[:1]])  # a /predict request batched with a V2 one: records
    assert not isinstance(mixed, Columns) and mixed == recs + recs[:1]
    other = join([cols, _columns([{"b": "z", "a": 1.0}])])  # another column order: records
    assert other == recs + [{"b": "z", "a": 1.0}]


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_columns_score_as_records_do(home: Path, task: str) -> None:
    lm = _loaded(task)
    records = _same_keys(_odd_records())
    cols = _columns(records)
    by_cols, by_recs = lm.arrays(cols), lm.arrays(records)
    assert list(by_cols) == list(by_recs)
    for c in by_recs:
        np.testing.assert_array_equal(by_cols[c], by_recs[c])
        assert by_cols[c].dtype == by_recs[c].dtype
    preds, proba = lm.predict_records(cols)
    want_preds, want_proba = _general(lm, records)
    if task == "binary":
        assert preds == want_preds
        np.testing.assert_allclose(proba, want_proba, rtol=1e-12)
    else:
        np.testing.assert_allclose(preds, want_preds, rtol=1e-12)


def test_columns_the_shortcut_cannot_judge_take_the_careful_path(home: Path) -> None:
    lm = _loaded("binary")
    good = _same_keys(_odd_records())[1]
    for bad in ({"x1": "1.5"}, {"x1": float("inf")}, {"x2": [1, 2]}, {"n": {"a": 1}}):
        assert lm.arrays(_columns([good, {**good, **bad}])) is None, bad
    huge = lm.arrays(_columns([{**good, "n": 10 ** 30}]))
    assert huge is not None and huge["n"][0] == 1e30
    short = {k: v for k, v in good.items() if k not in ("x2", "size")}
    with pytest.raises(SchemaMismatchError, match="'x2', 'size'"):
        lm.arrays(_columns([short]))
    text = _columns([{**good, "x1": "abc"}])  # the careful path words the refusal
    with pytest.raises(Exception) as by_cols:
        lm.predict_records(text)
    with pytest.raises(Exception) as by_recs:
        lm.predict_records(text.records())
    assert type(by_cols.value) is type(by_recs.value)
    assert str(by_cols.value) == str(by_recs.value)


def _with_numbers(cols: Columns) -> Columns:
    """The same rows with `numbers` made as the V2 codec makes them (every column it takes)."""
    numbers = {n: a for n, d in zip(cols.names, cols.data, strict=True)
               if (a := number_array(d)) is not None}
    return Columns(cols.names, cols.data, cols.n, numbers)


def test_number_array_takes_plain_numbers_only() -> None:
    np.testing.assert_array_equal(number_array([1, 2.5, 3]), [1.0, 2.5, 3.0])
    assert number_array([1, 2]).dtype == np.float64  # integers become floats, as the lean path
    assert number_array([1.0, float("inf")]) is not None  # the lean path refuses it (below)
    for other in ([1.0, None], ["1.5"], [1.0, "a"], [[1.0], [2.0]], [1.0, [2.0]], [{"a": 1}],
                  [10 ** 30, 1], [True, False]):
        assert number_array(other) is None, other


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_columns_with_their_numbers_score_as_without(home: Path, task: str) -> None:
    lm = _loaded(task)
    records = _same_keys(_odd_records())
    for i, r in enumerate(records):  # complete numeric columns: `numbers` holds them
        r.update(x1=r["x1"] if r["x1"] is not None else 0.5, x2=float(i), n=i % 9)
    plain, fast = _columns(records), _with_numbers(_columns(records))
    assert set(fast.numbers) == {"x1", "x2", "n"}
    for c, a in lm.arrays(plain).items():
        np.testing.assert_array_equal(lm.arrays(fast)[c], a)
        assert lm.arrays(fast)[c].dtype == a.dtype
    assert lm.predict_records(fast)[0] == lm.predict_records(plain)[0]
    records[3]["x2"] = float("inf")  # the careful path words the refusal
    assert lm.arrays(_with_numbers(_columns(records))) is None


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_requests_scored_together_answer_as_each_alone(home: Path, task: str) -> None:
    lm = _loaded(task)
    records = _same_keys(_odd_records())
    parts = [_with_numbers(_columns(records[:7])), records[7:20], _columns(records[20:21]),
             _columns(records[21:])]
    together, _ = lm.predict_parts(parts)
    alone = [p for part in parts for p in lm.predict_records(part)[0]]
    if task == "binary":
        assert together == alone
    else:
        np.testing.assert_allclose(together, alone, rtol=1e-12)
    text = [*parts[:2], _columns([{**records[0], "x1": "abc"}])]  # one part the lean path
    with pytest.raises(Exception) as joined:                       # cannot take: joined,
        lm.predict_parts(text)                                     # the careful path words it
    with pytest.raises(Exception) as own:                          # (the batcher then scores
        lm.predict_records(text[2])                                # each alone to blame it)
    assert type(joined.value) is type(own.value) and "'abc'" in str(joined.value)


def test_logged_columns_are_the_records_json() -> None:
    recs = [{"a": 1.5, "b": "x", "c": True}, {"a": None, "b": None, "c": 2}]
    assert _jsonable_rows(_columns(recs)) == _jsonable_rows(recs) == recs
    nan = [{"a": float("nan"), "b": "x"}]
    assert _jsonable_rows(_columns(nan)) == _jsonable_rows(nan) == [{"a": None, "b": "x"}]


INPUT = {"name": "a", "shape": [2], "datatype": "FP64", "data": [1.0, None]}
DOCS = [{"inputs": [INPUT]},
        {"id": "r1", "parameters": {"content_type": "pd", "request_key": "u"},
         "inputs": [INPUT, {**INPUT, "name": "b", "parameters": {"content_type": "str"}}],
         "outputs": [{"name": "predict"}, {"name": "predict_proba", "parameters": None}]},
        {"inputs": []}, {"inputs": {}}, {"inputs": [1]}, {"inputs": [INPUT], "id": 5},
        {"inputs": [INPUT], "id": "x" * 201}, {"inputs": [INPUT], "parameters": []},
        {"inputs": [{**INPUT, "name": ""}]}, {"inputs": [{**INPUT, "name": "n" * 301}]},
        {"inputs": [{**INPUT, "shape": []}]}, {"inputs": [{**INPUT, "shape": [-1]}]},
        {"inputs": [{**INPUT, "shape": [2.0]}]}, {"inputs": [{**INPUT, "shape": [True]}]},
        {"inputs": [{**INPUT, "shape": [1] * 9}]}, {"inputs": [{**INPUT, "shape": "2"}]},
        {"inputs": [{**INPUT, "datatype": 3}]}, {"inputs": [{**INPUT, "data": "x"}]},
        {"inputs": [{**INPUT, "parameters": "pd"}]},
        {"inputs": [{k: v for k, v in INPUT.items() if k != "data"}]},
        {"inputs": [{**INPUT, "extra": 1}]}, {"inputs": [INPUT], "outputs": {}},
        {"inputs": [INPUT], "outputs": [{"name": 1}]}, {"inputs": [INPUT], "outputs": [{}]},
        {"inputs": [INPUT], "unknown": 1}, [], "text", None, {}]


@pytest.mark.parametrize("doc", DOCS)
def test_the_plain_v2_parse_agrees_with_pydantic(doc) -> None:
    raw = orjson.dumps(doc)
    try:
        want = InferenceRequest.model_validate_json(raw).model_dump()
    except ValidationError:
        want = None
    fast = plain_request(orjson.loads(raw))
    if fast is not None:  # what it accepts, pydantic accepts with the same values
        assert want is not None and dataclasses.asdict(fast) == want
    if want is None:
        assert fast is None


def test_the_lean_path_reads_text_columns_as_sent_and_leaves_them_unchanged(
        home: Path) -> None:
    """Text sent as columns reaches the encoders' lookups as the request's own lists (no
    object array per column), batched with other requests' rows of either kind; missing
    values stay missing (never the text "None") and the lists the log keeps are untouched."""
    lm = _loaded("binary")
    records = _same_keys(_odd_records())
    cols = _columns(records)
    sent = [list(d) for d in cols.data]
    assert lm.arrays(cols, lean=True)["color"] is cols.by_name()["color"]
    assert lm.arrays(cols)["color"].dtype == object  # the frame and ONNX still get arrays
    parts = [cols, _columns(records[:5]), records[5:9]]
    preds, proba = lm.predict_parts(parts)
    want_preds, want_proba = _general(lm, records + records[:5] + records[5:9])
    assert preds == want_preds
    np.testing.assert_allclose(proba, want_proba, rtol=1e-12)
    assert cols.data == sent


def test_a_text_columns_parts_join_as_sent() -> None:
    from core.deploy.cache import _joined

    text = np.empty(2, dtype=object)
    text[:] = ["b", 7]
    assert _joined([["a", None], [1, 2], text]) == ["a", None, 1, 2, "b", 7]
    np.testing.assert_array_equal(_joined([np.array([1.0]), np.array([2.0, 3.0])]),
                                  [1.0, 2.0, 3.0])
