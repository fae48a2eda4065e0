"""The tabular network exports as one ONNX graph (its own preprocessing as ONNX operators,
the network by torch.onnx) with the same signature, parity check and stored result as every
family; the sequence models are refused naming the step and why."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session

pytest.importorskip("torch", reason="the optional 'deep' extra (PyTorch) is not installed: "
                                    "pip install -e '.[deep]'")
pytest.importorskip("skl2onnx", reason="ONNX export needs the extra `onnx` (pip install "
                                       "-e '.[onnx]')")
ort = pytest.importorskip("onnxruntime", reason="ONNX parity needs onnxruntime (extra `onnx`)")

from sklearn.datasets import load_diabetes, load_iris  # noqa: E402
from sklearn.pipeline import Pipeline  # noqa: E402

from core.automl.catalog import get_spec  # noqa: E402
from core.automl.deep.sequence import SequenceNetClassifier  # noqa: E402
from core.automl.train import build_pipeline, prepare  # noqa: E402
from core.onnx import parity  # noqa: E402
from core.onnx.convert import OnnxBlockedError, to_onnx  # noqa: E402
from core.onnx.export import export_onnx  # noqa: E402
from core.registry import register_version  # noqa: E402
from core.registry.versions import resolve  # noqa: E402

FAST = {"hidden_units": 16, "n_layers": 2, "max_epochs": 30, "patience": 5, "batch_size": 32,
        "learning_rate": 1e-2}


def _table(task: str) -> tuple[pd.DataFrame, pd.Series]:
    if task == "regression":
        X, y = load_diabetes(return_X_y=True, as_frame=True)
        X["band"] = pd.cut(X["bmi"], 3, labels=["low", "mid", "high"]).astype(str)
        X.loc[::9, "bp"] = np.nan
        return X.iloc[:200], pd.Series(y[:200])
    X, y = load_iris(return_X_y=True, as_frame=True)
    X["size"] = np.where(X["sepal length (cm)"] > 5.8, "large", "small")
    X.loc[::11, "petal width (cm)"] = np.nan  # a missing-value flag column in the network
    X.loc[::13, "size"] = None
    labels = pd.Series(np.asarray(["setosa", "versicolor", "virginica"])[y])
    return X, (labels == "virginica").map({True: "yes", False: "no"}) if task == "binary" \
        else labels


@functools.cache
def _fitted(task: str, norm: str = "batch", keep: tuple[str, ...] | None = None):
    X, y = _table(task)
    if keep is not None:
        X = X[list(keep)]
    data = prepare(pd.concat([X, y.rename("target")], axis=1), "target", task=task)
    pipe = build_pipeline(get_spec("deep_tabular"), task, {**FAST, "norm": norm},
                          data.schema).fit(data.X, data.y)
    return pipe, data


@pytest.mark.parametrize(("task", "norm"), [("binary", "batch"), ("multiclass", "layer"),
                                            ("regression", "batch")])
def test_tabular_network_exports_with_parity_stored(task: str, norm: str,
                                                    session: Session) -> None:
    pipe, data = _fitted(task, norm)
    classes = list(pipe.classes_) if task != "regression" else None
    register_version(pipe, session=session, name="net", task=task, target="target",
                     input_schema=data.schema, classes=classes)
    out = export_onnx("net:1", session=session)
    assert out.parity["passed"] is True and out.parity["rows"] > 0
    _, mv = resolve("net:1", session=session)
    assert mv.onnx_parity["passed"] is True  # stored with the version
    # the signature every export has: one [N, 1] input per column, named as the column
    s = ort.InferenceSession(out.data, providers=["CPUExecutionProvider"])
    kinds = {c["name"]: c["kind"] for c in data.schema}
    assert [i.name for i in s.get_inputs()] == list(kinds)
    for i in s.get_inputs():
        assert i.shape[1] == 1
        assert i.type == ("tensor(float)" if kinds[i.name] == "numeric" else "tensor(string)")
    names = [o.name for o in s.get_outputs()]
    assert names == (["variable"] if task == "regression" else ["label", "probabilities"])
    # and on the real rows, missing values included, it answers as the pipeline does
    doc = parity.check(pipe, out.data, data.X, task, "net:1", "training rows")
    assert doc["passed"], doc
    if task != "regression":
        label = s.run(None, _feed(s, data.X))[0]
        assert list(label) == list(pipe.predict(data.X))


def _feed(s, X: pd.DataFrame) -> dict:
    feed = {}
    for i in s.get_inputs():
        col = X[[i.name]]
        feed[i.name] = (col.astype(object).where(col.notna(), "__missing__").astype(str)
                        .to_numpy(dtype=object) if i.type == "tensor(string)"
                        else col.to_numpy(dtype=np.float32))
    return feed


@pytest.mark.parametrize("keep", [("sepal length (cm)", "petal width (cm)"), ("size",)])
def test_numbers_only_or_categories_only(keep: tuple[str, ...]) -> None:
    pipe, data = _fitted("multiclass", "layer", keep)
    raw = to_onnx(pipe, data.schema, "multiclass", list(pipe.classes_), "net:1")
    assert parity.check(pipe, raw, data.X, "multiclass", "net:1", "rows")["passed"]


def test_sequence_models_are_refused_naming_the_step() -> None:
    _, data = _fitted("binary")
    ct = build_pipeline(get_spec("deep_tabular"), "binary", FAST, data.schema).steps[0][1]
    pipe = Pipeline([("preprocess", ct.fit(data.X)), ("model", SequenceNetClassifier())])
    with pytest.raises(OnnxBlockedError) as err:
        to_onnx(pipe, data.schema, "binary", ["no", "yes"], "prices:2")
    message = str(err.value)
    assert "prices:2 cannot be exported to ONNX" in message
    assert "pipeline/model (SequenceNetClassifier" in message
    assert "earlier rows" in message and "python runtime" in message


def test_a_network_deployed_with_runtime_onnx_is_answered_by_onnxruntime(
        session: Session) -> None:
    from core.deploy import deploy
    from core.deploy.service import Serving
    from core.store import Database

    pipe, data = _fitted("binary")
    register_version(pipe, session=session, name="net", task="binary", target="target",
                     input_schema=data.schema, classes=list(pipe.classes_))
    export_onnx("net:1", session=session)
    deploy("net", 1, 100, session=session, warm=None, runtime="onnx")
    lm = Serving(Database()).cache.get("net", 1)
    assert lm.onnx is not None and lm.runtime_requested == "onnx"
    rows = data.X.head(30).astype(object).where(data.X.head(30).notna(), None)
    records = rows.to_dict("records")
    labels, proba = lm.predict_records(records)  # onnxruntime
    want_labels, want_proba = lm.predict_frame(data.X.head(30))  # the pipeline
    assert labels == want_labels
    assert np.allclose(proba, want_proba, atol=parity.ATOL, rtol=parity.RTOL)


def test_an_ensemble_of_a_network_and_a_linear_model_is_one_graph() -> None:
    from core.automl.ensemble import WeightedEnsemble

    net, data = _fitted("binary")  # column names with spaces and brackets, as in iris
    linear = build_pipeline(get_spec("linear"), "binary", {"C": 1.0}, data.schema).fit(
        data.X, data.y)
    ens = WeightedEnsemble([net, linear], [0.6, 0.4], task="binary")
    raw = to_onnx(ens, data.schema, "binary", list(ens.classes_), "net:3")
    assert parity.check(ens, raw, data.X, "binary", "net:3", "training rows")["passed"]
    inputs = [i.name for i in ort.InferenceSession(raw).get_inputs()]
    assert inputs == [c["name"] for c in data.schema]  # named as the columns, not sanitised
