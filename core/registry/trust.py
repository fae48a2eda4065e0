"""What a skops file may contain before anything in it is built.

skops constructs only the types it trusts by default (scikit-learn estimators, NumPy and SciPy
ufuncs and dtypes, plain containers) plus the exact names we pass. TRUSTED_TYPES is that list:
classes that hold data, named one by one. Never a module prefix and never a callable such as
`builtins.eval`, `functools.partial`, `operator.methodcaller` or a bound method: a file may
put any of those inside a FunctionTransformer and run it on the first `predict`.

The audit reads the file's schema without building anything, so a refusal can name every
untrusted type, and the scikit-learn version that saved each estimator is known up front.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

from core.errors import ArtifactIntegrityError
from core.registry.deep import skops_part
from core.registry.skops_io import sio

# Exact type names beyond skops' defaults that the workbench's own pipelines need
# (tests/core/test_artifact_trust.py builds every catalogue estimator, ensembles and market
# features, and checks that this list is enough and that every entry is a data class).
TRUSTED_TYPES: frozenset[str] = frozenset({
    # the workbench's own estimators and transformers
    "core.automl.ensemble.WeightedEnsemble",
    "core.automl.wrappers.LabelEncodedClassifier",
    # LightGBM / CatBoost: their state is the model as a str / bytes (core/automl/boosters.py)
    "core.automl.boosters.LightGBMClassifier",
    "core.automl.boosters.LightGBMRegressor",
    "core.automl.boosters.CatBoostClassifier",
    "core.automl.boosters.CatBoostRegressor",
    "core.features.transformers.CategoricalCleaner",
    "core.features.transformers.DatetimeParts",
    "core.features.finance.MarketFeatures",
    "core.features.finance.Indicator",
    # fitted state inside scikit-learn estimators
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.neighbors._kd_tree.KDTree",
    "sklearn.neighbors._ball_tree.BallTree",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neural_network._stochastic_optimizers.AdamOptimizer",
    "sklearn.neural_network._stochastic_optimizers.SGDOptimizer",
    # XGBoost's estimators; the Booster holds the model in XGBoost's own format
    "xgboost.core.Booster",
    "xgboost.sklearn.XGBClassifier",
    "xgboost.sklearn.XGBRegressor",
})


def _read(data: bytes, label: str) -> dict[str, Any]:
    data = skops_part(data)  # a pipeline with networks: its skops part (core/registry/deep.py)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return json.loads(zf.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ArtifactIntegrityError(f"{label} is not a readable skops file ({exc}).") from None


def untrusted_types(data: bytes, label: str) -> list[str]:
    """Every type, function or method in the file that is neither a skops default nor in
    TRUSTED_TYPES, sorted."""
    _read(data, label)  # a clear error for a file that is not a skops zip at all
    data = skops_part(data)
    try:
        found = sio.get_untrusted_types(data=data)
    except Exception as exc:
        raise ArtifactIntegrityError(f"{label} is not a readable skops file ({exc}).") from None
    return sorted(t for t in found if t not in TRUSTED_TYPES)


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def saved_sklearn_versions(data: bytes, label: str) -> set[str]:
    """The scikit-learn versions recorded by the estimators in the file (`_sklearn_version`,
    which scikit-learn itself compares on load)."""
    versions: set[str] = set()
    for key, value in _walk(_read(data, label)):
        if key == "_sklearn_version" and isinstance(value, dict):
            try:
                version = json.loads(value.get("content", "null"))
            except ValueError:
                continue
            if isinstance(version, str):
                versions.add(version)
    return versions


def _bad_hgb_tree(tree: Any, n_features: int) -> str | None:
    nodes = tree.nodes
    split = nodes[nodes["is_leaf"] == 0]
    n = len(nodes)
    if n == 0:
        return "a tree has no nodes"
    if ((split["left"] >= n) | (split["right"] >= n)).any():
        return "a tree points at nodes it does not have"
    if ((split["feature_idx"] < 0) | (split["feature_idx"] >= n_features)).any():
        return "a tree splits on a feature the model does not have"
    cats = split[split["is_categorical"] == 1]
    if len(cats) and (cats["bitset_idx"] >= len(tree.raw_left_cat_bitsets)).any():
        return "a tree points at category sets it does not have"
    return None


def _bad_sklearn_tree(tree: Any, n_features: int) -> str | None:
    n = tree.node_count
    left, right, feature = tree.children_left, tree.children_right, tree.feature
    split = left != -1
    if ((left[split] < 0) | (left[split] >= n) | (right[split] < 0) | (right[split] >= n)).any():
        return "a tree points at nodes it does not have"
    if ((feature[split] < 0) | (feature[split] >= n_features)).any():
        return "a tree splits on a feature the model does not have"
    return None


def check_tree_structures(obj: Any, label: str) -> None:
    """Refuse trees whose node arrays index outside themselves.

    skops can only check that a type is trusted, not that its arrays are consistent, and
    scikit-learn's tree walkers index those arrays without bounds checks: a crafted imported
    file could crash the server (or worse) on its first prediction. Our own artifacts are
    covered by their fingerprints; imported ones pass through here."""
    seen: set[int] = set()
    stack = [obj]
    while stack:
        est = stack.pop()
        if id(est) in seen or not hasattr(est, "get_params"):
            continue
        seen.add(id(est))
        n_features = int(getattr(est, "n_features_in_", 0) or 0)
        problem = None
        for trees in getattr(est, "_predictors", None) or []:
            for tree in trees:
                problem = problem or _bad_hgb_tree(tree, n_features)
        tree = getattr(est, "tree_", None)
        if tree is not None and hasattr(tree, "children_left"):
            problem = problem or _bad_sklearn_tree(tree, n_features)
        if problem:
            raise ArtifactIntegrityError(
                f"{label} holds a {type(est).__name__} whose {problem}: the file is corrupt or "
                "crafted, so it was not imported.")
        for value in vars(est).values():
            items = value if isinstance(value, list | tuple) else [value]
            for item in items:
                stack.extend(item if isinstance(item, list | tuple) else [item])


# -- boosters in their own formats (core/automl/boosters.py), checked before their loaders ----
LIGHTGBM_TYPES = ("core.automl.boosters.LightGBMClassifier",
                  "core.automl.boosters.LightGBMRegressor")
CATBOOST_TYPES = ("core.automl.boosters.CatBoostClassifier",
                  "core.automl.boosters.CatBoostRegressor")


def _ints(block: dict[str, str], key: str) -> list[int]:
    return [int(v) for v in block.get(key, "").split()] if block.get(key, "").strip() else []


def _bad_lightgbm_tree(block: dict[str, str], n_features: int) -> str | None:
    leaves = int(block.get("num_leaves", "0"))
    if leaves < 1:
        return "a tree has no leaves"
    inner = leaves - 1
    left, right = _ints(block, "left_child"), _ints(block, "right_child")
    feature, kinds = _ints(block, "split_feature"), _ints(block, "decision_type")
    if not (len(left) == len(right) == len(feature) == len(kinds) == inner) or \
            len(block.get("leaf_value", "").split()) != leaves:
        return "a tree's arrays do not match its number of leaves"
    children = left + right
    if any(not (-leaves <= c < inner) for c in children) or (inner and 0 in children):
        return "a tree points at nodes it does not have"
    if len(set(children)) != len(children):  # a tree: every node below the root once
        return "a tree reaches a node twice"
    if any(not 0 <= f < n_features for f in feature):
        return "a tree splits on a feature the model does not have"
    n_cat = int(block.get("num_cat", "0"))
    if any(k & 1 for k in kinds):  # categorical splits index the category bitsets
        bounds, words = _ints(block, "cat_boundaries"), _ints(block, "cat_threshold")
        thresholds = block.get("threshold", "").split()
        cats = [int(float(t)) for t, k in zip(thresholds, kinds, strict=False) if k & 1]
        if len(bounds) != n_cat + 1 or bounds != sorted(bounds) or bounds[0] != 0 or \
                bounds[-1] != len(words) or any(not 0 <= c < n_cat for c in cats):
            return "a tree points at category sets it does not have"
    return None


def check_lightgbm_model(text: str, n_features: int) -> str | None:
    """Why a LightGBM text model is not a well-formed forest over `n_features` features
    (LightGBM's own walker follows child indices unchecked), or None."""
    head, *trees = text.split("\nTree=")
    fields = dict(line.split("=", 1) for line in head.splitlines() if "=" in line)
    try:
        if int(fields.get("max_feature_idx", "-2")) + 1 != n_features:
            return "the model reads another number of features than the estimator"
        for tree in trees:
            body = tree.split("\nend of trees")[0]
            block = dict(line.split("=", 1) for line in body.splitlines()[1:] if "=" in line)
            problem = _bad_lightgbm_tree(block, n_features)
            if problem:
                return problem
    except ValueError:
        return "the model's numbers cannot be read"
    return None if trees else "the model has no trees"


def _json_content(node: Any) -> Any:
    try:
        return json.loads(node.get("content", "null")) if isinstance(node, dict) else None
    except ValueError:
        return None


def check_imported_boosters(data: bytes, label: str) -> None:
    """Before anything is built from an imported file: a LightGBM model must be a well-formed
    forest (read from the file's schema, where its text model is plain JSON); a CatBoost model
    is refused, since its binary format cannot be checked before CatBoost's native loader
    reads it. The workbench's own artifacts are covered by their fingerprints instead."""
    for node in _nodes(_read(data, label)):
        kind = f"{node.get('__module__')}.{node.get('__class__')}"
        if kind in CATBOOST_TYPES:
            raise ArtifactIntegrityError(
                f"{label} holds a CatBoost model: an imported CatBoost model cannot be checked "
                "before CatBoost's own loader reads it, so it was not imported. Retrain it on "
                "this workbench, or export it to ONNX without categorical features.")
        if kind in LIGHTGBM_TYPES:
            attrs = node.get("content", {}).get("content", {})
            if "model_" not in attrs:  # the unfitted template beside the fitted estimator
                continue
            text, n_features = (_json_content(attrs.get(k)) for k in ("model_",
                                                                    "n_features_in_"))
            readable = isinstance(text, str) and isinstance(n_features, int)
            problem = (check_lightgbm_model(text, n_features) if readable else
                       "fitted state is not a LightGBM text model with its number of features")
            if problem:
                raise ArtifactIntegrityError(
                    f"{label} holds a LightGBM model whose {problem}: the file is corrupt or "
                    "crafted, so it was not imported.")


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for item in node:
            yield from _nodes(item)
