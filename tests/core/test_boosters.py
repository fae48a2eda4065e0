"""LightGBM and CatBoost in the catalogue (core/automl/boosters.py): categories reach the
boosters as categories, rounds are chosen by early stopping, fits are seeded and quiet, a
saved pipeline holds each model in its library's own format and nothing callable, a crafted
file naming anything else is refused before anything is built, registered versions serve
through the lean path with the real pipeline's answers, and ONNX export converts LightGBM and
refuses CatBoost naming the step. (The catalogue-wide contract, tests/core/
test_catalogue_contract.py, covers defaults, sampled points and the save/load round trip.)"""

from __future__ import annotations

import builtins
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.automl.catalog import CATALOG
from core.automl.train import build_pipeline
from core.data.profile import input_schema
from core.deploy.cache import LoadedModel
from core.errors import ArtifactIntegrityError, UntrustedArtifactError
from core.features.inputs import model_input
from core.features.schema import align_to_schema
from core.registry import load_pipeline, register_version
from core.registry.artifacts import load_trusted_bytes
from core.registry.skops_io import sio
from tests.factories import store_session

BOOSTERS = ["lightgbm", "catboost"]
TASKS = ["binary", "multiclass", "regression"]
SMALL = {"lightgbm": {"min_data_per_group": 5}, "catboost": {"iterations": 60}}


def _table(n: int = 400, seed: int = 0) -> tuple[pd.DataFrame, list[dict]]:
    """A category that decides much of the target (levels in no numeric order), numbers with
    gaps, a second category with missing values."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"x": rng.normal(size=n), "city": rng.choice(list("pqrstu"), size=n),
                      "z": rng.normal(size=n),
                      "plan": rng.choice(["basic", "pro", None], size=n)})
    X.loc[::11, "x"] = np.nan
    schema = input_schema(X)
    return align_to_schema(X, schema), schema


def _target(X: pd.DataFrame, task: str) -> np.ndarray:
    signal = X["city"].map({"p": 2.0, "q": -1.0, "r": 1.5, "s": -2.0, "t": 0.5, "u": 0.0})
    signal = signal.to_numpy() + 0.5 * X["x"].fillna(0).to_numpy()
    if task == "regression":
        return 3 * signal + 1
    if task == "binary":
        return np.where(signal > 0.3, "yes", "no")
    return np.digitize(signal, [-0.7, 0.9]) + 1


def _fit(key: str, task: str, X: pd.DataFrame, schema: list[dict], **params: object):
    spec = CATALOG[key]
    point = {**spec.defaults[0], **SMALL[key], **params}
    return build_pipeline(spec, task, point, schema).fit(X, _target(X, task))


def _booster(pipe):
    model = pipe.named_steps["model"]
    return getattr(model, "estimator_", model)


def _dump(obj) -> bytes:
    buf = io.BytesIO()
    sio.dump(obj, buf)
    return buf.getvalue()


@pytest.mark.parametrize("key", BOOSTERS)
def test_categories_reach_the_booster_as_categories(key: str) -> None:
    X, schema = _table()
    est = _booster(_fit(key, "regression", X, schema))
    assert est.categorical_columns == 2  # city and plan: the first two encoded columns
    if key == "lightgbm":
        dump = json.dumps(est.booster_.dump_model())
        assert '"decision_type": "=="' in dump  # a split on a set of categories
    else:
        cats = est.booster_.get_cat_feature_indices()  # CatBoost puts them after the numbers
        assert len(cats) == 2
        importance = est.booster_.get_feature_importance()
        assert importance[cats].sum() > importance.sum() / 2  # city decides most of it


@pytest.mark.parametrize("key", BOOSTERS)
def test_rounds_are_chosen_by_early_stopping_and_fits_are_seeded(key: str) -> None:
    X, schema = _table()
    rng = np.random.default_rng(1)
    noise = X.assign(x=rng.normal(size=len(X)))  # nothing to learn: stops early
    pipe = build_pipeline(CATALOG[key], "regression", dict(CATALOG[key].defaults[0]),
                          schema).fit(noise, rng.normal(size=len(X)))
    est = _booster(pipe)
    limit = est.n_estimators if key == "lightgbm" else est.iterations
    assert est.n_iter_ < limit
    first, again = _fit(key, "binary", X, schema), _fit(key, "binary", X, schema)
    np.testing.assert_array_equal(first.predict_proba(X), again.predict_proba(X))


@pytest.mark.parametrize("key", BOOSTERS)
def test_fits_print_nothing_and_write_no_files(key: str, capfd: pytest.CaptureFixture,
                                               tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    X, schema = _table(n=200)
    _fit(key, "multiclass", X, schema)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert list(tmp_path.iterdir()) == []  # no catboost_info/ beside the server


@pytest.mark.parametrize("key", BOOSTERS)
def test_the_saved_state_is_the_model_in_its_own_format(key: str) -> None:
    X, schema = _table(n=200)
    pipe = _fit(key, "binary", X, schema)
    est = _booster(pipe)
    assert isinstance(est.model_, str if key == "lightgbm" else bytes)
    assert "booster_" not in est.__getstate__()  # the native handle is never saved
    loaded = load_trusted_bytes(_dump(pipe), "t:1")
    np.testing.assert_array_equal(loaded.predict_proba(X), pipe.predict_proba(X))


def _schema_of(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return json.loads(zf.read("schema.json"))


def _rewrite(data: bytes, change) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as dst:
        for item in src.infolist():
            body = src.read(item.filename)
            if item.filename == "schema.json":
                schema = json.loads(body)
                change(schema)
                body = json.dumps(schema).encode()
            dst.writestr(item, body)
    return out.getvalue()


def _nodes(node, cls: str):
    if isinstance(node, dict):
        if node.get("__class__") == cls:
            yield node
        for value in node.values():
            yield from _nodes(value, cls)
    elif isinstance(node, list):
        for item in node:
            yield from _nodes(item, cls)


@pytest.mark.parametrize(("key", "cls", "hostile"), [
    ("lightgbm", "LightGBMClassifier", ("lightgbm.basic", "Booster")),
    ("lightgbm", "LightGBMClassifier", ("lightgbm.sklearn", "LGBMClassifier")),
    ("catboost", "CatBoostClassifier", ("catboost.core", "CatBoost")),
])
def test_a_file_naming_the_library_own_classes_is_refused(key: str, cls: str,
                                                          hostile: tuple[str, str]) -> None:
    """The libraries' own classes are not trusted (their state may hold callables: a custom
    objective): a file naming one in place of the wrapper is refused, naming it."""
    X, schema = _table(n=200)
    data = _dump(_fit(key, "binary", X, schema))

    def swap(doc: dict) -> None:
        for node in _nodes(doc, cls):
            node["__module__"], node["__class__"] = hostile

    with pytest.raises(UntrustedArtifactError) as info:
        load_trusted_bytes(_rewrite(data, swap), "evil:1")
    assert ".".join(hostile) in info.value.message


def _node_of(value) -> dict:
    """How skops writes `value` inside a file (its schema node)."""
    return _schema_of(_dump({"v": value}))["content"]["v"]


CLASSES = {"lightgbm": "LightGBMClassifier", "catboost": "CatBoostClassifier"}


@pytest.mark.parametrize("key", BOOSTERS)
def test_a_callable_in_place_of_the_model_is_refused_before_anything_is_built(
        key: str) -> None:
    X, schema = _table(n=200)
    data = _dump(_fit(key, "binary", X, schema))

    def plant(doc: dict) -> None:
        for node in _nodes(doc, CLASSES[key]):
            node["content"]["content"]["model_"] = _node_of(builtins.exec)

    with pytest.raises(UntrustedArtifactError) as info:  # the audit reads, never builds
        load_trusted_bytes(_rewrite(data, plant), "evil:1")
    assert "builtins.exec" in info.value.message


@pytest.mark.parametrize("key", BOOSTERS)
def test_a_model_of_the_wrong_kind_is_refused_on_load(key: str) -> None:
    """The wrapper rebuilds its booster only from its own format, for the features it was
    fitted on: a swapped or foreign model is a load error, not a wrong answer later."""
    X, schema = _table(n=200)
    data = _dump(_fit(key, "binary", X, schema))
    narrow = X.drop(columns=["z"])
    foreign = _booster(_fit("lightgbm", "binary", narrow, input_schema(narrow))).model_

    def swap(doc: dict) -> None:
        for node in _nodes(doc, CLASSES[key]):
            node["content"]["content"]["model_"] = _node_of(foreign)

    with pytest.raises(ArtifactIntegrityError, match="could not be loaded"):
        load_trusted_bytes(_rewrite(data, swap), "evil:1")


def _odd_records(X: pd.DataFrame) -> list[dict]:
    records = []
    for i, row in enumerate(X.head(30).to_dict("records")):
        row = {k: (None if isinstance(v, float) and np.isnan(v) else v)
               for k, v in row.items()}
        if i % 4 == 0:
            row["city"] = "never-seen"
        if i % 5 == 0:
            row["z"] = None
        if i % 6 == 0:
            row["plan"] = None
        records.append(row)
    return records


@pytest.mark.parametrize("task", TASKS)
@pytest.mark.parametrize("key", BOOSTERS)
def test_a_registered_version_serves_lean_with_the_pipeline_answers(home: Path, key: str,
                                                                    task: str) -> None:
    X, schema = _table(n=200)
    pipe = _fit(key, task, X, schema)
    classes = None if task == "regression" else [c.item() if hasattr(c, "item") else c
                                                 for c in pipe.classes_]
    with store_session() as s:
        register_version(pipe, session=s, name=f"{key}-{task}", task=task, target="y",
                         input_schema=schema, classes=classes)
    with store_session() as s:
        _, mv, loaded = load_pipeline(f"{key}-{task}:1", session=s)
    lm = LoadedModel.build(f"{key}-{task}", mv, loaded)
    assert lm.fast is not None  # the preprocessing is replayed by the lean path
    records = _odd_records(X)
    preds, proba = lm.predict_records(records)
    want_preds, want_proba = lm.predict_frame(model_input(mv, pd.DataFrame.from_records(
        records)))
    if task == "regression":
        np.testing.assert_allclose(preds, want_preds, rtol=1e-9)
        np.testing.assert_allclose(preds, pipe.predict(pd.DataFrame.from_records(records)
                                                       .astype({"x": float, "z": float})),
                                   rtol=1e-9)
    else:
        assert list(preds) == list(want_preds)
        np.testing.assert_allclose(proba, want_proba, rtol=1e-9)
    assert lm.predict_records(records[:1])[0] == pytest.approx(list(want_preds[:1]))


@pytest.mark.slow
def test_lightgbm_with_category_splits_exports_to_onnx_with_parity() -> None:
    pytest.importorskip("onnxmltools", reason="ONNX export needs the extra `onnx`")
    import onnx

    from core.onnx import parity
    from core.onnx.convert import to_onnx
    from core.registry.onnx_model import with_metadata

    X, schema = _table()
    for task in TASKS:
        pipe = _fit("lightgbm", task, X, schema)
        classes = None if task == "regression" else [c.item() if hasattr(c, "item") else c
                                                     for c in pipe.classes_]
        data = with_metadata(onnx.load_model_from_string(
            to_onnx(pipe, schema, task, classes, "lgbm:1")), task, classes)
        held_out, _ = _table(n=150, seed=9)
        doc = parity.check(pipe, data, held_out, task, "lgbm:1", "test")
        assert doc["passed"], doc


def test_a_catboost_version_refuses_onnx_export_naming_the_step() -> None:
    pytest.importorskip("skl2onnx", reason="ONNX export needs the extra `onnx`")
    from core.onnx.convert import OnnxBlockedError, to_onnx

    X, schema = _table(n=200)
    pipe = _fit("catboost", "binary", X, schema)
    with pytest.raises(OnnxBlockedError) as err:
        to_onnx(pipe, schema, "binary", ["no", "yes"], "churn:2")
    assert "churn:2" in str(err.value) and "CatBoostClassifier" in str(err.value)


@pytest.mark.slow
def test_a_short_search_trains_both_and_registers_a_working_model() -> None:
    from core.automl.search import search

    X, _ = _table(n=600)
    frame = X.assign(y=_target(X, "binary"))
    result = search(frame, "y", budget=20, estimators=["lightgbm", "catboost", "linear"],
                    seed=0)
    trained = {t.estimator for t in result.trials if t.status in ("ok", "pruned")}
    assert {"lightgbm", "catboost"} <= trained, result.leaderboard()  # pruned: fit, scored
    assert not [t for t in result.trials if t.status == "failed"], result.leaderboard()
    assert set(result.pipeline.predict(X.head(20))) <= {"no", "yes"}


@pytest.mark.parametrize("key", BOOSTERS)
def test_a_time_limit_ends_the_boosting_and_keeps_a_working_model(key: str) -> None:
    """The search passes what is left of the budget (`max_time_s`); at its end the trees so
    far are the model."""
    X, schema = _table(n=200)
    pipe = _fit(key, "binary", X, schema, max_time_s=0.0)
    assert _booster(pipe).n_iter_ == 1
    assert set(pipe.predict(X)) <= {"no", "yes"}


def _lightgbm_text(pipe) -> str:
    return _booster(pipe).model_


@pytest.mark.parametrize(("edit", "words"), [
    (lambda t: t.replace("left_child=", "left_child=77 ", 1), "do not match"),
    (lambda t: _first_child(t, "99"), "points at nodes"),
    (lambda t: _first_child(t, t.split("right_child=", 1)[1].split()[0]), "twice"),
    (lambda t: t.replace("max_feature_idx=", "max_feature_idx=1", 1), "number of features"),
])
def test_an_imported_lightgbm_forest_that_points_outside_itself_is_refused(
        session, tmp_path: Path, edit, words: str) -> None:
    from core.registry import list_models
    from core.registry.importer import import_model

    X, schema = _table(n=200)
    pipe = _fit("lightgbm", "binary", X, schema)
    text = _lightgbm_text(pipe)

    def swap(doc: dict) -> None:
        for node in _nodes(doc, "LightGBMClassifier"):
            if "model_" in node["content"]["content"]:  # the fitted one
                node["content"]["content"]["model_"] = _node_of(edit(text))

    path = tmp_path / "crafted.skops"
    path.write_bytes(_rewrite(_dump(pipe), swap))
    with pytest.raises(ArtifactIntegrityError, match=words):
        import_model("crafted", path, session=session)
    assert list_models(session=session) == []
    good = tmp_path / "good.skops"
    good.write_bytes(_dump(pipe))  # the same pipeline, untouched, imports
    assert import_model("good", good, session=session).version == 1


def _first_child(text: str, value: str) -> str:
    head, _, rest = text.partition("left_child=")
    first, _, tail = rest.partition(" ")
    return f"{head}left_child={value} {tail}"


def test_an_imported_catboost_model_is_refused_before_catboost_reads_it(session,
                                                                       tmp_path: Path) -> None:
    from core.registry.importer import import_model

    X, schema = _table(n=200)
    path = tmp_path / "cb.skops"
    path.write_bytes(_dump(_fit("catboost", "binary", X, schema)))
    with pytest.raises(ArtifactIntegrityError, match="CatBoost model cannot be checked"):
        import_model("cb", path, session=session)
