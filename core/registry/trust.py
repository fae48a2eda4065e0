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
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from core.errors import ArtifactIntegrityError
from core.registry.deep import skops_part
from core.registry.skops_io import sio

# Exact type names beyond skops' defaults that the workbench's own pipelines need
# (tests/core/test_artifact_trust.py builds every catalogue estimator, ensembles and market
# features, and checks that this list is enough and that every entry is a data class).
TRUSTED_TYPES: frozenset[str] = frozenset({
    # the workbench's own estimators and transformers
    "core.automl.ensemble.WeightedEnsemble",
    "core.automl.stacking.StackedEnsemble",  # members + the combiner's arrays
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
# XGBoost's state goes to its native unserialiser (and tree walker) as raw bytes, unchecked:
# refused on import for the same reason as CatBoost (review s8 L4)
XGBOOST_TYPES = ("xgboost.core.Booster", "xgboost.sklearn.XGBClassifier",
                 "xgboost.sklearn.XGBRegressor")


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


# keys LightGBM writes in a tree block (Tree::ToString); a crafted block may not add others
_TREE_KEYS = frozenset({
    "num_leaves", "num_cat", "split_feature", "split_gain", "threshold", "decision_type",
    "left_child", "right_child", "leaf_value", "leaf_weight", "leaf_count", "internal_value",
    "internal_weight", "internal_count", "cat_boundaries", "cat_threshold", "is_linear",
    "shrinkage"})
MAX_LIGHTGBM_CLASSES = 10_000  # num_class sizes every prediction's output row


def _key_values(lines: list[str], where: str) -> dict[str, str]:
    """`key=value` lines as LightGBM reads them, refusing what it would read differently
    from us: a line without `=`, or a key given twice (one reader's last-wins is another's
    first-wins)."""
    block: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if not sep or not key:
            raise _Refused(f"{where} has a line that is not key=value")
        if key in block:
            raise _Refused(f"{where} gives {key} twice")
        block[key] = value
    return block


class _Refused(ValueError):
    pass


# keys LightGBM writes in a model's header (GBDT::SaveModelToString)
_HEADER_KEYS = frozenset({
    "version", "num_class", "num_tree_per_iteration", "label_index", "max_feature_idx",
    "objective", "feature_names", "monotone_constraints", "feature_infos", "tree_sizes"})
# objectives by the number of outputs they convert: LightGBM's multiclass objectives read
# their own `num_class:K` and convert K outputs per row in place (review s9 H1: K above the
# header's num_class wrote past the row's buffer and crashed the server on predict)
_ONE_OUTPUT = frozenset({
    "regression", "regression_l1", "huber", "fair", "poisson", "quantile", "mape", "gamma",
    "tweedie", "binary", "cross_entropy", "cross_entropy_lambda"})
_K_OUTPUTS = frozenset({"multiclass", "multiclassova"})


def _bad_header(head: dict[str, str], n_classes: int | None,
                per_iteration: int) -> str | None:
    """Header keys LightGBM does not write, or an objective whose number of outputs (and
    every `num_class:` it carries) is not the header's."""
    unknown = sorted(set(head) - _HEADER_KEYS)
    if unknown:
        return f"header has keys LightGBM's models do not ({', '.join(unknown[:3])})"
    if "objective" not in head:
        return None  # raw scores, no conversion
    name, *options = head["objective"].split(" ")
    classes = {o.partition(":")[2] for o in options if o.startswith("num_class:")}
    outputs = per_iteration if name in _K_OUTPUTS else 1 if name in _ONE_OUTPUT else None
    multi = bool(n_classes and n_classes > 2)
    if outputs is None or (name in _K_OUTPUTS) != multi or \
            classes - {str(per_iteration)} or (name in _K_OUTPUTS and not classes):
        return (f"objective {head['objective'][:60]!r} does not convert "
                f"{per_iteration} output(s) per row for {n_classes or 'no'} classes")
    return None


_INNER_KEYS = ("split_feature", "split_gain", "threshold", "decision_type", "left_child",
               "right_child", "internal_value", "internal_weight", "internal_count")
_LEAF_KEYS = ("leaf_value", "leaf_weight", "leaf_count")


def _bad_lengths(block: dict[str, str]) -> str | None:
    """Every per-node array holds exactly one single-space-separated number per node."""
    leaves = int(block["num_leaves"])
    for keys, n in ((_INNER_KEYS, leaves - 1), (_LEAF_KEYS, leaves)):
        for key in (k for k in keys if k in block):
            tokens = block[key].split(" ") if block[key] else []
            if len(tokens) != n or "" in tokens:
                return f"{key} does not hold one number per node"
    return None


def _tree_blocks(text: str) -> tuple[str, list[str]]:
    """The header and each tree's lines, in the one layout LightGBM writes: `Tree=i`, its
    key=value lines, two blank lines; then `end of trees`. Anything else (a blank line or a
    duplicate inside a tree, where LightGBM stops reading or jumps by `tree_sizes` offsets)
    is refused, so the block we check is the block LightGBM reads."""
    head, sep, rest = text.partition("\nTree=")
    if not sep:
        raise _Refused("the model has no trees")
    trees, sep, _tail = ("Tree=" + rest).partition("end of trees\n")
    if not sep:
        raise _Refused("the model's trees are not terminated")
    chunks = trees.split("\n\n\n")
    if chunks[-1] != "":
        raise _Refused("the model's trees are not laid out as LightGBM writes them")
    return head, chunks[:-1]


def check_lightgbm_model(text: str, n_features: int, n_classes: int | None) -> str | None:
    """Why a LightGBM text model is not a well-formed forest over `n_features` features for
    a problem with `n_classes` classes (None: regression), or None.

    LightGBM's own walker follows child and feature indices unchecked, and its output has
    `num_class` columns per row; so the text is read strictly (one layout, no duplicate
    keys, no linear trees), every tree is checked, and finally LightGBM's own parse of the
    text must write it back byte for byte: what it holds is what was checked."""
    try:
        head_text, blocks = _tree_blocks(text)
        head = _key_values([ln for ln in head_text.splitlines()[1:] if ln], "the header")
        if int(head.get("max_feature_idx", "-2")) + 1 != n_features:
            return "the model reads another number of features than the estimator"
        expected = n_classes if n_classes and n_classes > 2 else 1
        per_iteration = int(head.get("num_tree_per_iteration", "0"))
        if not int(head.get("num_class", "0")) == per_iteration == expected or \
                expected > MAX_LIGHTGBM_CLASSES:
            return (f"header says num_class={head.get('num_class')} and num_tree_per_"
                    f"iteration={head.get('num_tree_per_iteration')}, the estimator has "
                    f"{n_classes or 'no'} classes")
        if len(blocks) % per_iteration:
            return f"{len(blocks)} trees are not whole iterations of {per_iteration}"
        problem = _bad_header(head, n_classes, per_iteration)
        if problem:
            return problem
        for i, block_text in enumerate(blocks):
            lines = block_text.split("\n")
            if lines[0] != f"Tree={i}":
                return f"tree {i} is not where LightGBM writes it ({lines[0][:30]!r})"
            block = _key_values(lines[1:], f"tree {i}")
            unknown = sorted(set(block) - _TREE_KEYS)
            if unknown:
                return f"tree {i} has keys LightGBM's trees do not ({', '.join(unknown[:3])})"
            if block.get("is_linear", "0") != "0":
                return f"tree {i} is a linear tree (is_linear), which is not imported"
            problem = _bad_lightgbm_tree(block, n_features) or _bad_lengths(block)
            if problem:
                return f"tree {i}: {problem}"
    except _Refused as exc:
        return str(exc)
    except ValueError:
        return "the model's numbers cannot be read"
    return _rewrites_itself(text)


# Parsing is not safe either (a crafted text aborted LightGBM's parser in-process), so the
# re-save runs in a child process: a crash there is a refusal, not a dead server. The child
# calls LightGBM's C API through ctypes (0.2 s; importing the Python package takes seconds),
# the same LGBM_BoosterLoadModelFromString the estimator's loader uses.
_RESAVE = """
import ctypes, importlib.util, os, sys
where = importlib.util.find_spec("lightgbm").submodule_search_locations[0]
lib = ctypes.cdll.LoadLibrary(os.path.join(where, "lib", "lib_lightgbm.so"))
handle, iterations, n = ctypes.c_void_p(), ctypes.c_int(0), ctypes.c_int64(0)
if lib.LGBM_BoosterLoadModelFromString(ctypes.c_char_p(sys.stdin.buffer.read()),
                                       ctypes.byref(iterations), ctypes.byref(handle)):
    sys.exit(3)
lib.LGBM_BoosterSaveModelToString(handle, 0, -1, 0, ctypes.c_int64(0), ctypes.byref(n), None)
out = ctypes.create_string_buffer(n.value)
if lib.LGBM_BoosterSaveModelToString(handle, 0, -1, 0, n, ctypes.byref(n), out):
    sys.exit(4)
sys.stdout.buffer.write(out.value)
"""
# what the Python package appends to the C++ text (our estimators fit on arrays, not frames)
_PANDAS_TAIL = "\npandas_categorical:null\n"
RESAVE_TIMEOUT_S = 60


def _rewrites_itself(text: str) -> str | None:
    """Whether LightGBM, parsing the checked text in a child process, writes it back byte for
    byte (so the trees it holds are the ones checked)."""
    try:
        done = subprocess.run([sys.executable, "-c", _RESAVE], input=text.encode(),
                              capture_output=True, timeout=RESAVE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        return "model took too long for LightGBM to read"
    except UnicodeEncodeError:
        return "model is not text"
    if done.returncode != 0:
        return f"model cannot be read by LightGBM (exit {done.returncode})"
    if done.stdout.decode(errors="replace") + _PANDAS_TAIL != text:
        return "model is not written as LightGBM writes it (it differs from its own re-save)"
    return None


def _json_content(node: Any) -> Any:
    try:
        return json.loads(node.get("content", "null")) if isinstance(node, dict) else None
    except ValueError:
        return None


def check_imported_boosters(data: bytes, label: str) -> None:
    """Before anything is built from an imported file: a LightGBM model must be a well-formed
    forest (read from the file's schema, where its text model is plain JSON); a CatBoost or
    XGBoost model is refused, since its binary format cannot be checked before the library's
    native loader reads it. The workbench's own artifacts are covered by their fingerprints
    instead."""
    for node in _nodes(_read(data, label)):
        kind = f"{node.get('__module__')}.{node.get('__class__')}"
        if kind in CATBOOST_TYPES:
            raise ArtifactIntegrityError(
                f"{label} holds a CatBoost model: an imported CatBoost model cannot be checked "
                "before CatBoost's own loader reads it, so it was not imported. Retrain it on "
                "this workbench, or export it to ONNX without categorical features.")
        if kind in XGBOOST_TYPES:
            raise ArtifactIntegrityError(
                f"{label} holds an XGBoost model: an imported XGBoost model cannot be checked "
                "before XGBoost's own loader reads it, so it was not imported. Retrain it on "
                "this workbench, or export it to ONNX.")
        if kind in LIGHTGBM_TYPES:
            attrs = node.get("content", {}).get("content", {})
            if "model_" not in attrs:  # the unfitted template beside the fitted estimator
                continue
            text, n_features = (_json_content(attrs.get(k)) for k in ("model_",
                                                                    "n_features_in_"))
            n_classes = _array_length(data, attrs.get("classes_"))
            readable = isinstance(text, str) and isinstance(n_features, int) and \
                (n_classes is not None or kind.endswith("Regressor"))
            problem = (check_lightgbm_model(text, n_features, n_classes) if readable else
                       "fitted state is not a LightGBM text model with its number of features")
            if problem:
                raise ArtifactIntegrityError(
                    f"{label} holds a LightGBM model whose {problem}: the file is corrupt or "
                    "crafted, so it was not imported.")


def _array_length(data: bytes, node: Any) -> int | None:
    """The length of a 1-d array stored in the skops file, from its .npy header alone."""
    if not isinstance(node, dict) or not isinstance(node.get("file"), str):
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(skops_part(data))) as zf, zf.open(node["file"]) as fh:
            major, _ = np.lib.format.read_magic(fh)
            read = (np.lib.format.read_array_header_1_0 if major == 1 else
                    np.lib.format.read_array_header_2_0)
            shape, _, _ = read(fh)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError):
        return None
    return int(shape[0]) if len(shape) == 1 else None


def _nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for item in node:
            yield from _nodes(item)
