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
