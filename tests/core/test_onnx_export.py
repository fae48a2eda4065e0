"""ONNX export: every catalogue family converts with its preprocessing and passes parity
against the pipeline (labels equal, probabilities and values within the stated tolerance);
a step without a converter is named; the parity result is stored with the version."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlmodel import Session

from core.automl.catalog import CATALOG, DEEP_SPECS
from core.automl.ensemble import WeightedEnsemble
from core.automl.train import build_pipeline
from core.enums import Task
from core.registry import register_version
from core.store import ModelVersion

pytest.importorskip("skl2onnx", reason="ONNX export needs the extra `onnx` (pip install "
                                       "-e '.[onnx]')")
pytest.importorskip("onnxruntime", reason="ONNX parity needs onnxruntime (extra `onnx`)")
onnx = pytest.importorskip("onnx", reason="ONNX export needs the extra `onnx`")

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

from core.onnx import parity  # noqa: E402
from core.onnx.convert import OnnxBlockedError, to_onnx  # noqa: E402
from core.onnx.export import ParityFailedError, export_onnx, synthetic_rows  # noqa: E402
from core.registry.onnx_model import OnnxModel  # noqa: E402

SCHEMA = [{"name": "a", "kind": "numeric", "dtype": "float64"},
          {"name": "b", "kind": "numeric", "dtype": "float64"},
          {"name": "plan", "kind": "categorical", "dtype": "object"},
          {"name": "customer_id", "kind": "id", "dtype": "object"}]
# small enough to fit in well under a second each; the same estimators and preprocessing
SMALL = {"rf": {"n_estimators": 8}, "extra_trees": {"n_estimators": 8},
         "xgboost": {"n_estimators": 8}, "hgb": {}, "linear": {},
         "knn": {"weights": "uniform"},  # 'distance' is blocked: see the test below
         "mlp": {"hidden_layer_sizes": 8}, "lightgbm": {"num_leaves": 8}}
FIXED = {"hgb": {"max_iter": 8}, "mlp": {"max_iter": 60}, "lightgbm": {"n_estimators": 20}}


def frame(n: int = 160, seed: int = 0) -> pd.DataFrame:
    """Numbers with gaps, a category with a rare level (infrequent for the encoders) and
    missing values, and an id column the pipeline drops."""
    rng = np.random.default_rng(seed)
    plan = rng.choice(["basic", "plus", "pro"], size=n).astype(object)
    plan[:3] = "gold"  # below min_frequency: the encoders' infrequent category
    plan[5] = None
    a = rng.normal(size=n)
    a[7] = np.nan
    return pd.DataFrame({"a": a, "b": rng.normal(size=n), "plan": plan,
                         "customer_id": [f"c{i}" for i in range(n)]})


def targets(X: pd.DataFrame, task: str) -> np.ndarray:
    signal = X["a"].fillna(0).to_numpy() + 0.8 * (X["plan"] == "pro").to_numpy()
    if task == Task.REGRESSION:
        return 3 * signal + 10
    if task == Task.BINARY:
        return np.where(signal > 0.2, "yes", "no")
    return np.digitize(signal, [-0.5, 0.5]) + 1  # integer classes 1, 2, 3


def fitted(key: str, task: str, X: pd.DataFrame) -> object:
    spec = CATALOG[key]
    spec = spec.__class__(**{**spec.__dict__, "fixed": {**spec.fixed, **FIXED.get(key, {})}})
    pipe = build_pipeline(spec, task, {**spec.defaults[0], **SMALL[key]}, SCHEMA)
    return pipe.fit(X, targets(X, task))


def classes_of(pipe: object, task: str) -> list | None:
    return None if task == Task.REGRESSION else [c.item() if hasattr(c, "item") else c
                                                 for c in pipe.classes_]


# the PyTorch networks (listed when torch is installed): the tabular network is tested below
# and in tests/core/test_onnx_torch_export.py (with the sequence models' refusal)
NETWORKS = {s.key for s in DEEP_SPECS}
# no converter reproduces them: exporting one is refused naming the step (tests/core/
# test_boosters.py); CatBoost's own ONNX export refuses categorical features
BLOCKED = {"catboost"}


def test_every_catalogue_family_is_covered_here() -> None:
    assert set(SMALL) == set(CATALOG) - NETWORKS - BLOCKED, \
        "a new catalogue family needs an ONNX parity case"


@pytest.mark.parametrize("task", [Task.BINARY, Task.MULTICLASS, Task.REGRESSION])
def test_the_tabular_network_exports_with_parity_on_held_out_rows(task: str) -> None:
    pytest.importorskip("torch", reason="the networks need the extra `deep`")
    X, held_out = frame(), frame(n=120, seed=1).drop(columns="customer_id")
    spec = CATALOG["deep_tabular"]
    pipe = build_pipeline(spec, task, {**spec.defaults[0], **spec.fixed, "max_epochs": 2},
                          SCHEMA).fit(X, targets(X, task))
    data = to_onnx(pipe, SCHEMA, task, classes_of(pipe, task), "churn:4")
    assert parity.check(pipe, data, held_out, task, "churn:4", "test")["passed"]


@pytest.mark.parametrize("task", [Task.BINARY, Task.MULTICLASS, Task.REGRESSION])
@pytest.mark.parametrize("key", sorted(SMALL))
def test_family_exports_with_parity_on_held_out_rows(key: str, task: str) -> None:
    train, held_out = frame(seed=0), frame(n=120, seed=1)
    pipe = fitted(key, task, train)
    data = to_onnx(pipe, SCHEMA, task, classes_of(pipe, task), f"{key}:1")
    from core.registry.onnx_model import with_metadata
    data = with_metadata(onnx.load_model_from_string(data), task, classes_of(pipe, task))
    doc = parity.check(pipe, data, held_out.drop(columns="customer_id"), task, "t", "test")
    assert doc["passed"], doc
    assert doc["rows"] == 120 and doc["tolerance"] == {"atol": parity.ATOL,
                                                       "rtol": parity.RTOL}
    assert {"skl2onnx", "onnxruntime", "onnx"} <= set(doc["converters"])


def test_graph_takes_one_input_per_column_and_answers_label_then_probabilities() -> None:
    pipe = fitted("linear", Task.BINARY, frame())
    model = onnx.load_model_from_string(to_onnx(pipe, SCHEMA, Task.BINARY, ["no", "yes"],
                                                "t:1"))
    inputs = {i.name: (i.type.tensor_type.elem_type,
                       [d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim])
              for i in model.graph.input}
    # the id column is not an input: the pipeline never reads it
    assert set(inputs) == {"a", "b", "plan"}
    assert inputs["a"][0] == onnx.TensorProto.FLOAT and inputs["a"][1][1] == 1
    assert inputs["plan"][0] == onnx.TensorProto.STRING and inputs["plan"][1][1] == 1
    assert [o.name for o in model.graph.output] == ["label", "probabilities"]
    # any ONNX runtime can call it without the workbench: plain onnxruntime here
    import onnxruntime as ort
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    label, proba = sess.run(None, {"a": np.array([[2.0]], np.float32),
                                   "b": np.array([[0.0]], np.float32),
                                   "plan": np.array([["pro"]], object)})
    assert label.tolist() == ["yes"] and proba.shape == (1, 2)


@pytest.mark.parametrize("task", [Task.BINARY, Task.REGRESSION])
def test_an_ensemble_exports_as_one_graph_with_parity(task: str) -> None:
    X = frame()
    members = [fitted("linear", task, X), fitted("rf", task, X), fitted("xgboost", task, X)]
    ens = WeightedEnsemble(members, [0.5, 0.3, 0.2], task=task)
    data = to_onnx(ens, SCHEMA, task, classes_of(members[0], task), "ens:1")
    from core.registry.onnx_model import with_metadata
    data = with_metadata(onnx.load_model_from_string(data), task, classes_of(members[0], task))
    doc = parity.check(ens, data, frame(n=100, seed=3).drop(columns="customer_id"), task,
                       "ens:1", "test")
    assert doc["passed"], doc


def test_a_date_column_blocks_the_export_and_names_the_step() -> None:
    schema = [*SCHEMA, {"name": "signup", "kind": "datetime", "dtype": "object"}]
    X = frame().assign(signup="2024-01-05")
    pipe = build_pipeline(CATALOG["linear"], Task.BINARY, {"C": 1.0}, schema)
    pipe.fit(X, targets(X, Task.BINARY))
    with pytest.raises(OnnxBlockedError) as err:
        to_onnx(pipe, schema, Task.BINARY, ["no", "yes"], "churn:3")
    assert err.value.http_status == 409
    message = str(err.value)
    assert "churn:3" in message and "blocked by step" in message
    assert "pipeline/preprocess/datetime/parts (DatetimeParts)" in message


def test_knn_with_distance_weights_is_blocked_with_the_reason() -> None:
    """skl2onnx converts k-NN but answers as if the weights were uniform: the catalogue's
    default ('distance') is reported as blocking instead of failing parity later."""
    X = frame()
    spec = CATALOG["knn"]
    pipe = build_pipeline(spec, Task.BINARY, spec.defaults[0], SCHEMA).fit(
        X, targets(X, Task.BINARY))
    assert spec.defaults[0]["weights"] == "distance"
    with pytest.raises(OnnxBlockedError) as err:
        to_onnx(pipe, SCHEMA, Task.BINARY, ["no", "yes"], "churn:2")
    assert "pipeline/model (KNeighborsClassifier with weights='distance'" in str(err.value)


# -- through the registry: the result is stored with the version ----------------------------
def _register(s: Session, key: str = "rf", task: str = Task.BINARY,
              schema: list | None = None, X: pd.DataFrame | None = None) -> ModelVersion:
    X = frame() if X is None else X
    pipe = fitted(key, task, X) if schema is None else None
    if pipe is None:
        pipe = build_pipeline(CATALOG["linear"], task, {"C": 1.0}, schema).fit(
            X, targets(X, task))
    return register_version(pipe, session=s, name="churn", task=task, target="y",
                            input_schema=schema or SCHEMA, classes=classes_of(pipe, task) or [],
                            estimator=key)


def test_export_stores_the_parity_result_with_the_version(backend_db) -> None:
    with Session(backend_db.engine, expire_on_commit=False) as s:
        mv = _register(s)
        result = export_onnx("churn:1", session=s)
        assert result.parity["passed"] and result.parity["rows"] > 0
        assert result.parity["rows_from"] == "rows built from the schema"
    with Session(backend_db.engine) as s:
        stored = s.get(ModelVersion, mv.id).onnx_parity
    assert stored["passed"] is True
    assert stored["max_abs_diff"] <= parity.ATOL and "skl2onnx" in stored["converters"]
    assert OnnxModel(result.data, "x").predict(frame(n=20).head(5).drop(columns="customer_id")
                                                 ).shape == (5,)


def test_a_blocked_export_is_stored_as_such(backend_db) -> None:
    schema = [*SCHEMA, {"name": "signup", "kind": "datetime", "dtype": "object"}]
    with Session(backend_db.engine, expire_on_commit=False) as s:
        mv = _register(s, schema=schema, X=frame().assign(signup="2024-01-05"))
        with pytest.raises(OnnxBlockedError, match="DatetimeParts"):
            export_onnx("churn", session=s)
    with Session(backend_db.engine) as s:
        stored = s.get(ModelVersion, mv.id).onnx_parity
    assert stored["passed"] is False and "DatetimeParts" in stored["blocked"]


def test_failed_parity_is_refused_with_the_differences(session: Session, monkeypatch) -> None:
    """A converter that drifts from the pipeline (simulated by a zero tolerance on a
    float64 pipeline vs float32 graph) is refused, and the failure is stored."""
    mv = _register(session, key="linear")
    monkeypatch.setattr(parity, "ATOL", 0.0)
    monkeypatch.setattr(parity, "RTOL", 0.0)
    with pytest.raises(ParityFailedError, match="does not reproduce the pipeline"):
        export_onnx("churn:1", session=session)
    session.refresh(mv)
    assert mv.onnx_parity["passed"] is False and mv.onnx_parity["max_abs_diff"] > 0


def test_synthetic_rows_use_the_fitted_categories_and_an_unseen_one() -> None:
    pipe = fitted("rf", Task.BINARY, frame())
    rows = synthetic_rows(SCHEMA, pipe, n=400)
    assert list(rows.columns) == ["a", "b", "plan"]
    seen = set(rows["plan"].dropna())
    assert {"basic", "plus", "pro", "__unseen__"} <= seen
    assert rows["a"].isna().any() and rows["plan"].isna().any()


def test_parity_runs_on_the_last_rows_of_the_versions_dataset(session: Session,
                                                              tmp_path) -> None:
    from core.data.datasets import ingest_path

    X = frame(n=260, seed=4)
    csv = tmp_path / "churn.csv"
    X.assign(y=targets(X, Task.BINARY)).to_csv(csv, index=False)
    ds = ingest_path(csv, session=session).dataset
    pipe = fitted("hgb", Task.BINARY, X.head(200))
    register_version(pipe, session=session, name="churn", task=Task.BINARY, target="y",
                     input_schema=SCHEMA, classes=classes_of(pipe, Task.BINARY),
                     dataset_id=ds.id)
    doc = export_onnx("churn", session=session).parity
    assert doc["passed"] and doc["rows"] == 200
    assert doc["rows_from"] == f"the last 200 rows of dataset {ds.id}"
