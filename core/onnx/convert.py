"""Fitted workbench pipelines → one ONNX graph (skl2onnx; onnxmltools for XGBoost).

Every version is converted the same way, as a weighted ensemble of members (a single pipeline
is one member of weight 1): each member `Pipeline([preprocess, model])` is converted with
skl2onnx on the shared inputs (one per input column, named as the column, `[N, 1]`, float32
for numbers and string for the rest), then the members' probabilities (or values) are summed
with their weights in the same graph. A classifier's label is the class of the highest summed
probability, exactly as `LabelEncodedClassifier` and `WeightedEnsemble` answer.

Outputs, as skl2onnx names them: `label` [N] then `probabilities` [N, K] for a classifier,
`variable` [N, 1] for a regressor. A step with no converter is named before anything is
converted (`OnnxBlockedError`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.impute import SimpleImputer
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from core.automl.ensemble import WeightedEnsemble
from core.automl.wrappers import LabelEncodedClassifier
from core.enums import Task
from core.errors import ConflictError, InputError
from core.features.kinds import Encoding, encoding_of
from core.features.transformers import CategoricalCleaner
from core.onnx import torch_export
from core.store.shapes import SchemaColumn

TARGET_OPSET = 17
ML_OPSET = 3
LABEL, PROBABILITIES, VARIABLE = "label", "probabilities", "variable"
CONTAINERS = ("Pipeline", "ColumnTransformer")
INSTALL = "pip install -e '.[onnx]'"


class OnnxBlockedError(ConflictError):
    """The version holds a step that has no ONNX converter (named in the message)."""

    code = "onnx_blocked"


class OnnxUnavailableError(InputError):
    """The optional `onnx` extra is not installed (not the caller's data: a 409 conflict with
    this server's installation, which says what to install)."""

    code = "onnx_unavailable"
    http_status = 409


@dataclass(frozen=True)
class Member:
    pipeline: Any  # Pipeline([("preprocess", ColumnTransformer), ("model", estimator)])
    weight: float


def require() -> None:
    """Refuse clearly when the converters are not installed."""
    try:
        import onnxruntime  # noqa: F401
        import skl2onnx  # noqa: F401
    except ImportError:
        raise OnnxUnavailableError(
            f"ONNX export needs the optional extra `onnx`: run `{INSTALL}` (skl2onnx, "
            "onnxmltools, onnxruntime).") from None


def input_columns(schema: list[SchemaColumn]) -> list[tuple[str, bool]]:
    """(name, is_numeric) of the columns the graph takes, in schema order; dropped kinds (ids,
    free text) are not inputs, since the pipeline never reads them."""
    out = []
    for c in schema:
        enc = encoding_of(c)
        if enc is not None:
            out.append((str(c["name"]), enc is Encoding.NUMBER))
    return out


def members_of(pipeline: Any) -> list[Member]:
    if type(pipeline) is WeightedEnsemble:
        return [Member(p, float(w)) for p, w in zip(pipeline.pipelines, pipeline.weights,
                                                     strict=True)]
    return [Member(pipeline, 1.0)]


def _steps(obj: Any, path: str) -> list[tuple[str, Any]]:
    """Every (path, leaf estimator) under `obj`, containers walked."""
    kind = type(obj).__name__
    if kind == "Pipeline":
        return [s for name, step in obj.steps for s in _steps(step, f"{path}/{name}")]
    if kind == "ColumnTransformer":
        return [s for name, step, _ in obj.transformers_ if not isinstance(step, str)
                for s in _steps(step, f"{path}/{name}")]
    if isinstance(obj, LabelEncodedClassifier):
        return _steps(obj.estimator_, path)
    return [(path, obj)]


def _knn_weights(step: Any) -> str | None:
    return None if step.weights == "uniform" else \
        f"weights={step.weights!r}: the converter answers as if 'uniform'"


# Converters that exist but do not reproduce some settings (found by the parity tests): the
# step is reported as blocking rather than exported to fail its parity check.
UNFAITHFUL = {KNeighborsClassifier: _knn_weights, KNeighborsRegressor: _knn_weights}


def blocking_steps(pipeline: Any) -> list[str]:
    """'path (Type)' of every step no registered converter handles, or handles unfaithfully
    (with the reason)."""
    _register()
    from skl2onnx._supported_operators import sklearn_operator_name_map

    blocked = []
    for i, member in enumerate(members_of(pipeline)):
        prefix = f"member {i + 1}" if type(pipeline) is WeightedEnsemble else "pipeline"
        for path, step in _steps(member.pipeline, prefix):
            if torch_export.network_kind(step) is not None:  # torch.onnx, not skl2onnx
                if why := torch_export.blocked_reason(step):
                    blocked.append(f"{path} ({type(step).__name__}: {why})")
                continue
            if type(step) not in sklearn_operator_name_map:
                blocked.append(f"{path} ({type(step).__name__})")
            elif type(step) in UNFAITHFUL and (why := UNFAITHFUL[type(step)](step)):
                blocked.append(f"{path} ({type(step).__name__} with {why})")
    return blocked


def _unwrapped(member: Any) -> Any:
    """The member with the label-encoding wrapper taken off (its inner estimator answers
    codes 0..K-1 in the order of `classes_`; the graph maps them back)."""
    from sklearn.pipeline import Pipeline

    steps = list(member.steps)
    name, last = steps[-1]
    if isinstance(last, LabelEncodedClassifier):
        steps[-1] = (name, last.estimator_)
    return Pipeline(steps)


def to_onnx(pipeline: Any, schema: list[SchemaColumn], task: str,
            classes: list[Any] | None, label: str) -> bytes:
    """The whole version as one ONNX model (bytes); `OnnxBlockedError` names the step that
    cannot be converted."""
    require()
    import onnx
    from onnx import TensorProto, compose, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    blocked = blocking_steps(pipeline)
    if blocked:
        raise OnnxBlockedError(
            f"{label} cannot be exported to ONNX: blocked by step {', '.join(blocked)}: no "
            "ONNX converter reproduces it. Retrain without it (for example, leave date "
            "columns out or give their parts as numeric columns; k-NN with "
            "weights='uniform') to export.")
    inputs = input_columns(schema)
    types = [(n, FloatTensorType([None, 1]) if num else StringTensorType([None, 1]))
             for n, num in inputs]
    classify = task != Task.REGRESSION
    graphs = []
    for i, member in enumerate(members_of(pipeline)):
        plain = _unwrapped(member.pipeline)
        options = {id(plain.steps[-1][1]): {"zipmap": False}} if classify else None
        try:
            if torch_export.network_kind(plain.steps[-1][1]) is not None:
                model = torch_export.member_graph(plain, inputs, classify, label, TARGET_OPSET,
                                                  ML_OPSET)
            else:
                model = _named_as_columns(convert_sklearn(
                    plain, initial_types=types, options=options,
                    target_opset={"": TARGET_OPSET, "ai.onnx.ml": ML_OPSET}),
                    [n for n, _ in inputs])
        except OnnxBlockedError:
            raise
        except Exception as exc:  # a converter's refusal: name the member and why
            raise OnnxBlockedError(
                f"{label} cannot be exported to ONNX: converting "
                f"{'member ' + str(i + 1) if len(graphs) or i else 'the pipeline'} "
                f"({type(plain.steps[-1][1]).__name__}) failed: {exc}") from None
        graphs.append((compose.add_prefix(model, f"m{i}_", rename_inputs=False), member.weight))
    first = graphs[0][0]
    nodes, inits = [], []
    for model, _ in graphs:
        nodes.extend(model.graph.node)
        inits.extend(model.graph.initializer)
    terms = []
    for i, (model, weight) in enumerate(graphs):
        out = model.graph.output[1 if classify else 0].name
        w = f"m{i}_weight"
        inits.append(helper.make_tensor(w, TensorProto.FLOAT, [], [weight]))
        nodes.append(helper.make_node("Mul", [out, w], [f"m{i}_weighted"]))
        terms.append(f"m{i}_weighted")
    total = PROBABILITIES if classify else VARIABLE
    nodes.append(helper.make_node("Sum", terms, [total]) if len(terms) > 1
                 else helper.make_node("Identity", terms, [total]))
    outputs = []
    if classify:
        nodes.append(helper.make_node("ArgMax", [PROBABILITIES], ["best"], axis=1, keepdims=0))
        values = np.asarray(classes)
        if values.dtype.kind in "biu":
            table = helper.make_tensor("classes", TensorProto.INT64, [len(values)],
                                       values.astype(np.int64).tolist())
            label_type = TensorProto.INT64
        else:
            table = helper.make_tensor("classes", TensorProto.STRING, [len(values)],
                                       [str(v).encode() for v in values])
            label_type = TensorProto.STRING
        inits.append(table)
        nodes.append(helper.make_node("Gather", ["classes", "best"], [LABEL], axis=0))
        outputs.append(helper.make_tensor_value_info(LABEL, label_type, [None]))
        outputs.append(helper.make_tensor_value_info(PROBABILITIES, TensorProto.FLOAT,
                                                     [None, len(values)]))
    else:
        outputs.append(helper.make_tensor_value_info(VARIABLE, TensorProto.FLOAT, [None, 1]))
    graph = helper.make_graph(nodes, "workbench", list(first.graph.input), outputs, inits)
    opsets: dict[str, int] = {}
    for model, _ in graphs:
        for op in model.opset_import:
            opsets[op.domain] = max(opsets.get(op.domain, 0), op.version)
    merged = helper.make_model(graph, producer_name="ml-workbench", opset_imports=[
        helper.make_opsetid(d, v) for d, v in sorted(opsets.items())])
    merged.ir_version = max(model.ir_version for model, _ in graphs)
    onnx.checker.check_model(merged)
    return merged.SerializeToString()


def _named_as_columns(model: Any, names: list[str]) -> Any:
    """skl2onnx renames inputs it finds unsafe (`sepal length (cm)` -> `sepal_length__cm_`);
    the graph's inputs are named as the columns, in the same order, so rename them back."""
    renamed = {i.name: n for i, n in zip(model.graph.input, names, strict=True) if i.name != n}
    if not renamed:
        return model
    for i in model.graph.input:
        i.name = renamed.get(i.name, i.name)
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            if name in renamed:
                node.input[k] = renamed[name]
    return model


def _imputer_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    imputer = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    kept = int(np.sum(~np.isnan(imputer.statistics_))) if not imputer.keep_empty_features \
        else len(imputer.statistics_)
    extra = len(imputer.indicator_.features_) if imputer.add_indicator else 0
    operator.outputs[0].type = FloatTensorType([n, kept + extra])


def _imputer_convert(scope: Any, operator: Any, container: Any) -> None:
    """SimpleImputer over numbers, `add_indicator` included (skl2onnx's own converter leaves
    the indicator columns out): NaN → the fitted statistic, then one 0/1 column per feature
    that had missing values at fit time, as scikit-learn appends them."""
    from onnx import TensorProto

    imputer = operator.raw_operator
    name = scope.get_unique_variable_name
    names = [i.full_name for i in operator.inputs]
    X = names[0]
    if len(names) > 1:
        X = name("imputer_in")
        container.add_node("Concat", names, X, axis=1, name=scope.get_unique_operator_name("C"))
    stats = np.asarray(imputer.statistics_, dtype=np.float32)
    missing, filled = name("isnan"), name("filled")
    container.add_node("IsNaN", [X], missing, name=scope.get_unique_operator_name("IsNaN"))
    fill = name("stats")
    container.add_initializer(fill, TensorProto.FLOAT, [1, len(stats)],
                              np.nan_to_num(stats).tolist())
    container.add_node("Where", [missing, fill, X], filled,
                       name=scope.get_unique_operator_name("Where"))
    parts = [filled]
    keep = np.flatnonzero(~np.isnan(stats))
    if not imputer.keep_empty_features and len(keep) < len(stats):
        idx, kept = name("kept_idx"), name("kept")
        container.add_initializer(idx, TensorProto.INT64, [len(keep)], keep.tolist())
        container.add_node("Gather", [filled, idx], kept, axis=1,
                           name=scope.get_unique_operator_name("Gather"))
        parts = [kept]
    if imputer.add_indicator and len(imputer.indicator_.features_):
        feats = np.asarray(imputer.indicator_.features_, dtype=np.int64)
        idx, sub, flags = name("ind_idx"), name("ind_nan"), name("ind")
        container.add_initializer(idx, TensorProto.INT64, [len(feats)], feats.tolist())
        container.add_node("Gather", [missing, idx], sub, axis=1,
                           name=scope.get_unique_operator_name("Gather"))
        container.add_node("Cast", [sub], flags, to=TensorProto.FLOAT,
                           name=scope.get_unique_operator_name("Cast"))
        parts.append(flags)
    out = operator.outputs[0].full_name
    if len(parts) == 1:
        container.add_node("Identity", parts, out, name=scope.get_unique_operator_name("Id"))
    else:
        container.add_node("Concat", parts, out, axis=1,
                           name=scope.get_unique_operator_name("Concat"))


def _codes(encoder: Any) -> list[dict[str, int]]:
    """Per input column, category → output code as the fitted encoder computes it (read off
    the encoder itself, so infrequent categories and drops agree with scikit-learn): the
    ordinal code, or the index of the hot column inside that column's block (-1: none)."""
    cats = encoder.categories_
    size = max(len(c) for c in cats)
    rows = np.empty((size, len(cats)), dtype=object)
    for j, c in enumerate(cats):
        rows[:, j] = [c[min(i, len(c) - 1)] for i in range(size)]
    names = getattr(encoder, "feature_names_in_", None)
    if names is not None:  # fitted on a frame: asked with one, so no feature-name warning
        import pandas as pd

        rows = pd.DataFrame(rows, columns=list(names))
    out = encoder.transform(rows)
    out = np.asarray(out.toarray() if hasattr(out, "toarray") else out)  # sparse one-hot
    maps: list[dict[str, int]] = []
    start = 0
    widths = getattr(encoder, "_n_features_outs", None)
    for j, c in enumerate(cats):
        if isinstance(encoder, OrdinalEncoder):
            maps.append({str(v): int(out[i, j]) for i, v in enumerate(c)})
            continue
        block = out[:, start:start + widths[j]]
        maps.append({str(v): int(np.argmax(block[i])) if block[i].any() else -1
                     for i, v in enumerate(c)})
        start += widths[j]
    return maps


def _unknown(encoder: Any, j: int) -> int:
    """The code of a category never seen at fit time."""
    if isinstance(encoder, OrdinalEncoder):
        return int(encoder.unknown_value) if encoder.handle_unknown == "use_encoded_value" \
            else -1
    infrequent = getattr(encoder, "infrequent_categories_", None)
    if encoder.handle_unknown == "infrequent_if_exist" and infrequent is not None \
            and infrequent[j] is not None:
        return encoder._n_features_outs[j] - 1  # the infrequent column is each block's last
    return -1


def _encoder_shape(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    encoder = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    width = len(encoder.categories_) if isinstance(encoder, OrdinalEncoder) \
        else sum(encoder._n_features_outs)
    operator.outputs[0].type = FloatTensorType([n, width])


def _encoder_convert(scope: Any, operator: Any, container: Any) -> None:
    """OneHotEncoder / OrdinalEncoder over text (after CategoricalCleaner), infrequent
    categories included (skl2onnx's converters do not implement them): each column's text is
    mapped to its code by an ai.onnx.ml LabelEncoder, then one-hot columns are `code == k`."""
    from onnx import TensorProto

    encoder = operator.raw_operator
    name, op = scope.get_unique_variable_name, scope.get_unique_operator_name
    names = [i.full_name for i in operator.inputs]
    X = names[0]
    if len(names) > 1:
        X = name("enc_in")
        container.add_node("Concat", names, X, axis=1, name=op("Concat"))
    parts = []
    for j, mapping in enumerate(_codes(encoder)):
        idx, col, code = name("col_idx"), name("col"), name("code")
        container.add_initializer(idx, TensorProto.INT64, [1], [j])
        container.add_node("Gather", [X, idx], col, axis=1, name=op("Gather"))
        container.add_node("LabelEncoder", [col], code, op_domain="ai.onnx.ml", op_version=2,
                           keys_strings=list(mapping), values_int64s=list(mapping.values()),
                           default_int64=_unknown(encoder, j), name=op("LabelEncoder"))
        out = name("encoded")
        if isinstance(encoder, OrdinalEncoder):
            container.add_node("Cast", [code], out, to=TensorProto.FLOAT, name=op("Cast"))
        else:
            width = encoder._n_features_outs[j]
            rng, hot = name("range"), name("hot")
            container.add_initializer(rng, TensorProto.INT64, [width], list(range(width)))
            container.add_node("Equal", [code, rng], hot, name=op("Equal"))
            container.add_node("Cast", [hot], out, to=TensorProto.FLOAT, name=op("Cast"))
        parts.append(out)
    container.add_node("Concat", parts, operator.outputs[0].full_name, axis=1,
                       name=op("Concat"))


class _IntAttributes:
    """A container whose nodes get booleans as integers (skl2onnx 1.20's HistGradientBoosting
    converter hands scikit-learn 1.9's boolean arrays to ONNX, which wants ints)."""

    def __init__(self, container: Any) -> None:
        self._container = container

    def __getattr__(self, item: str) -> Any:
        return getattr(self._container, item)

    def add_node(self, *args: Any, **attrs: Any) -> Any:
        for key, value in attrs.items():
            if isinstance(value, list) and any(isinstance(v, bool | np.bool_) for v in value):
                attrs[key] = [int(v) for v in value]
            elif isinstance(value, np.ndarray) and value.dtype == np.bool_:
                attrs[key] = value.astype(np.int64).tolist()
        return self._container.add_node(*args, **attrs)


def _patch_hgb() -> None:
    from skl2onnx import update_registered_converter
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._registration import _converter_pool, get_shape_calculator

    for cls in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        alias = sklearn_operator_name_map[cls]
        original = _converter_pool[alias]
        update_registered_converter(cls, alias, get_shape_calculator(alias), _ints(original),
                                    options=original.get_allowed_options() or None)


def _ints(original: Any) -> Any:
    def convert(scope: Any, operator: Any, container: Any) -> None:
        original(scope, operator, _IntAttributes(container))
    return convert


# -- converters for the workbench's own steps and for XGBoost -------------------------------
@functools.cache
def _register() -> None:
    """Once per process: CategoricalCleaner (text in, the same text out: missing values arrive
    as the `__missing__` category, see docs/deep/onnx.md) and XGBoost via onnxmltools."""
    from skl2onnx import update_registered_converter
    from skl2onnx.common.data_types import StringTensorType
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    def clean_shape(operator: Any) -> None:
        n = operator.inputs[0].get_first_dimension()
        width = sum(i.type.shape[1] for i in operator.inputs)
        operator.outputs[0].type = StringTensorType([n, width])

    def clean_convert(scope: Any, operator: Any, container: Any) -> None:
        names = [i.full_name for i in operator.inputs]
        if len(names) == 1:
            container.add_node("Identity", names, operator.outputs[0].full_name,
                               name=scope.get_unique_operator_name("CategoricalCleaner"))
        else:
            container.add_node("Concat", names, operator.outputs[0].full_name, axis=1,
                               name=scope.get_unique_operator_name("CategoricalCleaner"))

    update_registered_converter(CategoricalCleaner, "WorkbenchCategoricalCleaner",
                                clean_shape, clean_convert)
    update_registered_converter(SimpleImputer, "SklearnImputer", _imputer_shape,
                                _imputer_convert)
    for encoder in (OneHotEncoder, OrdinalEncoder):
        update_registered_converter(encoder, f"Workbench{encoder.__name__}", _encoder_shape,
                                    _encoder_convert)
    _patch_hgb()
    try:
        from onnxmltools.convert.xgboost.operator_converters.XGBoost import convert_xgboost
        from xgboost import XGBClassifier, XGBRegressor
    except ImportError:  # without onnxmltools an XGBoost step is reported as blocking
        return
    update_registered_converter(
        XGBClassifier, "XGBoostXGBClassifier", calculate_linear_classifier_output_shapes,
        convert_xgboost, options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
    update_registered_converter(XGBRegressor, "XGBoostXGBRegressor",
                                calculate_linear_regressor_output_shapes, convert_xgboost)
    _register_lightgbm()


def _register_lightgbm() -> None:
    """The workbench's LightGBM estimators through onnxmltools' LightGBM converter (categorical
    splits become sets of BRANCH_EQ nodes), fed the estimator's booster. CatBoost is not
    registered: its own ONNX export refuses models with categorical features, so a CatBoost
    step is reported as blocking (docs/automl/lgbm-catboost.md)."""
    from types import SimpleNamespace

    from skl2onnx import update_registered_converter
    from skl2onnx.common.shape_calculator import (
        calculate_linear_classifier_output_shapes,
        calculate_linear_regressor_output_shapes,
    )

    from core.automl.boosters import LightGBMClassifier, LightGBMRegressor
    try:
        from onnxmltools.convert.lightgbm.operator_converters.LightGbm import convert_lightgbm
    except ImportError:  # without onnxmltools (or lightgbm) the step is reported as blocking
        return

    def convert(scope: Any, operator: Any, container: Any) -> None:
        est = operator.raw_operator
        # what the converter reads of an LGBMModel: the booster, the class codes, the kind
        operator.raw_operator = SimpleNamespace(booster_=est.booster_, boosting_type="gbdt",
                                                classes_=getattr(est, "classes_", None))
        try:
            convert_lightgbm(scope, operator, container)
        finally:
            operator.raw_operator = est

    update_registered_converter(
        LightGBMClassifier, "WorkbenchLightGBMClassifier",
        calculate_linear_classifier_output_shapes, convert,
        options={"nocl": [True, False], "zipmap": [True, False, "columns"]})
    update_registered_converter(LightGBMRegressor, "WorkbenchLightGBMRegressor",
                                calculate_linear_regressor_output_shapes, convert)
