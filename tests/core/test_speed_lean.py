"""The serving shortcuts of issue 20 (docs/serving/speed.md) give what the real pipeline gives:
records → column arrays in one pass per kind of column, the request body parsed by orjson
when it is plainly valid, the per-row probabilities and labels built without bytecode loops,
request ids without os.urandom."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import orjson
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from app.api.schemas import PredictRequest
from app.api.wire import plain_predict_request
from core.automl.intervals import intervals
from core.deploy.cache import LoadedModel, probability_dicts
from core.deploy.predictor import _request_id
from core.errors import SchemaMismatchError
from core.features.inputs import model_input
from core.registry import load_pipeline, register_version
from tests.factories import store_session

SCHEMA = [{"name": "x1", "kind": "numeric", "dtype": "float64"},
          {"name": "x2", "kind": "numeric", "dtype": "float64"},
          {"name": "n", "kind": "numeric", "dtype": "int64"},
          {"name": "color", "kind": "categorical", "dtype": "object"},
          {"name": "size", "kind": "categorical", "dtype": "object"}]


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.normal(size=n),
                         "n": rng.integers(0, 9, size=n),
                         "color": rng.choice(["red", "green", "blue"], size=n),
                         "size": rng.choice(["S", "M", "L", "XL"], size=n)})


def _pipeline(estimator) -> Pipeline:
    return Pipeline([("pre", ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["color", "size"]),
        ("num", "passthrough", ["x1", "x2", "n"])])), ("model", estimator)])


def _loaded(task: str) -> LoadedModel:
    X = _frame()
    if task == "binary":
        y = np.where(X["x1"] + (X["color"] == "red") > 0.3, "yes", "no")
        pipe = _pipeline(HistGradientBoostingClassifier(max_iter=30, random_state=0)).fit(X, y)
        classes = ["no", "yes"]
    else:
        y = 2 * X["x1"] - X["x2"] + (X["size"] == "XL")
        pipe = _pipeline(HistGradientBoostingRegressor(max_iter=30, random_state=0)).fit(X, y)
        classes = None
    with store_session() as s:
        register_version(pipe, session=s, name=task, task=task, target="y",
                         input_schema=SCHEMA, classes=classes)
    with store_session() as s:
        _, mv, loaded = load_pipeline(f"{task}:1", session=s)
    lm = LoadedModel.build(task, mv, loaded)
    assert lm.fast is not None  # the shortcut under test is in use
    return lm


def _odd_records() -> list[dict]:
    """Missing values, unknown categories, ints and bools among floats, keys in another
    order than the schema and a key the model does not know."""
    records = []
    for i, row in enumerate(_frame(40, seed=3).to_dict("records")):
        row = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        if i % 5 == 0:
            row["x1"] = None
        if i % 7 == 0:
            row["color"] = "never-seen"
        if i % 9 == 0:
            row["size"] = None
        if i % 4 == 0:
            row["x2"] = int(i)
        if i == 6:
            row["n"] = True
        row = dict(reversed(list(row.items())))
        row["extra"] = "ignored"
        records.append(row)
    return records


def _general(lm: LoadedModel, records: list[dict]):
    """The real pipeline on the frame the careful path builds (what runs without a lean path)."""
    return lm.predict_frame(model_input(lm.mv, pd.DataFrame.from_records(records)))


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_the_lean_path_answers_like_the_real_pipeline(home: Path, task: str) -> None:
    lm = _loaded(task)
    records = _odd_records()
    arrays = lm.arrays(records)
    assert list(arrays) == [c["name"] for c in SCHEMA]  # the schema's order, extras dropped
    assert np.isnan(arrays["x1"][0]) and arrays["n"][6] == 1.0
    preds, proba = lm.predict_records(records)
    want_preds, want_proba = _general(lm, records)
    if task == "binary":
        assert preds == want_preds
        np.testing.assert_allclose(proba, want_proba, rtol=1e-12)
        assert probability_dicts(lm.classes, proba) == [
            {c: p for c, p in zip(lm.classes, row, strict=True)} for row in want_proba.tolist()]
    else:
        assert proba is None and want_proba is None
        np.testing.assert_allclose(preds, want_preds, rtol=1e-12)
        np.testing.assert_allclose(intervals(preds, 0.7), intervals(want_preds, 0.7),
                                   rtol=1e-12)
    one = records[:1]  # a single row takes the same shortcut
    assert lm.predict_records(one)[0] == pytest.approx(_general(lm, one)[0])


def test_values_the_shortcut_cannot_judge_take_the_careful_path(home: Path) -> None:
    lm = _loaded("binary")
    good = _odd_records()[1]
    for bad in ({"x1": "1.5"}, {"x1": float("inf")}, {"x2": [1, 2]}, {"n": {"a": 1}}):
        assert lm.arrays([good, {**good, **bad}]) is None, bad
    listed = [good, {**good, "color": ["red", "blue"]}]  # one cell, refused like the pipeline
    assert lm.arrays(listed)["color"][1] == ["red", "blue"]
    with pytest.raises((TypeError, ValueError)):
        lm.predict_records(listed)
    with pytest.raises((TypeError, ValueError)):
        _general(lm, listed)
    huge = lm.arrays([{**good, "n": 10 ** 30}])  # beyond 64 bits: still a number
    assert huge is not None and huge["n"][0] == 1e30
    with pytest.raises(SchemaMismatchError, match="'x2', 'size'"):
        lm.arrays([good, {k: v for k, v in good.items() if k not in ("x2", "size")}])


DOCS = [{"records": [{"a": 1}]},
        {"records": [{"a": 1}, {"b": "x"}], "request_key": "user-7", "coverage": 0.8},
        {"records": [{"a": 1}], "request_key": None, "coverage": None},
        {"records": []}, {"records": [1, 2]}, {"records": {"a": 1}}, {"records": [{"a": 1}],
                                                                      "coverage": 1.0},
        {"records": [{"a": 1}], "coverage": "0.5"}, {"records": [{"a": 1}], "coverage": True},
        {"records": [{"a": 1}], "request_key": 7}, {"records": [{"a": 1}],
                                                    "request_key": "k" * 501},
        {"records": [{"a": 1}], "unknown": 1}, [], "text", None, {}]


@pytest.mark.parametrize("doc", DOCS)
def test_the_plain_request_parse_agrees_with_pydantic(doc) -> None:
    raw = orjson.dumps(doc)
    try:
        want = PredictRequest.model_validate_json(raw)
    except ValidationError:
        want = None
    fast = plain_predict_request(orjson.loads(raw))
    if fast is not None:  # what it accepts, pydantic accepts with the same values
        assert want is not None and fast.model_dump() == want.model_dump()
    if want is None:
        assert fast is None


def test_request_ids_are_unique_time_ordered_random_uuids() -> None:
    """Version 7 UUIDs: the millisecond first (logged ids append to their indexes), 74
    random bits after it (unguessable: feedback is attached by request id)."""
    import time
    import uuid

    before = time.time_ns() // 1_000_000
    ids = [_request_id() for _ in range(10_000)]
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 10_000
    assert all(re.fullmatch(r"[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}", i) for i in ids)
    parsed = [uuid.UUID(i) for i in ids]
    assert {u.version for u in parsed} == {7} and {u.variant for u in parsed} == {uuid.RFC_4122}
    stamps = [int(i[:12], 16) for i in ids]
    assert before <= min(stamps) and max(stamps) <= after
    assert stamps == sorted(stamps)  # the index grows at its end
    # the random part varies in every position: no two ids of one millisecond share it
    tails = {i[13:] for i in ids}
    assert len(tails) == 10_000
    assert {c for t in tails for c in t[:3]} == set("0123456789abcdef")


def test_a_forked_worker_never_hands_out_its_parents_ids() -> None:
    """Request ids come from a pool of random bytes; a forked server worker must not inherit
    the pool (it would repeat the parent's next ids, and feedback would land on the wrong
    prediction)."""
    import os

    _request_id()  # the parent has a filled pool
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, then exit without running pytest's teardown
        os.close(read)
        os.write(write, ",".join(_request_id() for _ in range(5)).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        child = pipe.read().split(",")
    os.waitpid(pid, 0)
    parent = [_request_id() for _ in range(5)]
    assert len(child) == 5 and not set(child) & set(parent)
