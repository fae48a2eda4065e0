"""A lean per-request path for the common fitted preprocessing: a ColumnTransformer of
OneHotEncoder / OrdinalEncoder / the workbench's CategoricalCleaner and DatetimeParts /
StandardScaler /
SimpleImputer / passthrough (alone or in small Pipelines) is replayed with NumPy on the
request's column arrays, skipping pandas and the ColumnTransformer's per-call overhead; the
estimator after it is called as usual (HistGradientBoosting through `TreeWalker`).

`compile_fast(pipeline, schema)` returns None unless every step is supported AND the compiled
transform reproduces the real one on probe rows built from the schema and the fitted
categories. So a pipeline it does not understand simply takes the ordinary path."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from itertools import repeat
from operator import itemgetter
from typing import Any

import numpy as np

from core.deploy import treewalk
from core.enums import Task
from core.store.shapes import SchemaColumn

Arrays = dict[str, np.ndarray | list[Any]]  # a text column may stay the request's own list
Fn = Callable[[np.ndarray], np.ndarray]


class Unsupported(Exception):
    pass


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _unseen(cats: np.ndarray) -> Any:
    """A value the encoder never saw, of the categories' own type."""
    if cats.dtype.kind in "iuf":
        finite = cats[np.isfinite(cats.astype(np.float64))]
        return float(finite.max()) + 1.0 if len(finite) else 0.0
    return "\x00never-seen"


def _widths(enc: Any) -> list[int]:
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

    if type(enc) is OrdinalEncoder:
        return [1] * len(enc.categories_)
    if type(enc) is OneHotEncoder:
        return [int(w) for w in enc._n_features_outs]  # private; verified by _agrees
    raise Unsupported(type(enc).__name__)


def _table_encoder(enc: Any) -> Fn:
    """OneHotEncoder or OrdinalEncoder, whatever their options (infrequent categories, drop,
    unknown and missing handling), as one lookup table per column: the fitted encoder itself
    transforms every known category and one unseen value once, at load time; a request is
    then a dict lookup per value and a row gather. Unknown values raise only when the encoder
    itself refuses them (handle_unknown="error")."""
    cats_list = list(enc.categories_)
    widths = _widths(enc)
    strict = enc.handle_unknown == "error"
    length = max(len(c) for c in cats_list) + (0 if strict else 1)
    probe = np.empty((length, len(cats_list)), dtype=object)
    for j, cats in enumerate(cats_list):
        values = cats.tolist() + ([] if strict else [_unseen(cats)])
        probe[:, j] = [values[i] if i < len(values) else values[0] for i in range(length)]
    names = getattr(enc, "feature_names_in_", None)
    if names is not None:
        import pandas as pd

        probe = pd.DataFrame(probe, columns=names)
    encoded = _dense(enc.transform(probe))
    offsets = np.cumsum([0, *widths])
    columns = []
    for j, cats in enumerate(cats_list):
        table = np.ascontiguousarray(encoded[:, offsets[j]:offsets[j + 1]])
        lookup: dict[Any, int] = {}
        missing_row = None
        for i, c in enumerate(cats.tolist()):
            if _is_missing(c):
                missing_row = i
            else:
                lookup[c] = i
        unseen_row = None if strict else len(cats)
        columns.append((lookup, table, missing_row, unseen_row))
    dtype = getattr(enc, "dtype", np.float64)

    def codes(j: int, values: Any) -> np.ndarray:
        """Row of column j's table for each value (`values`: a list or a 1-D array)."""
        lookup, _, missing_row, unseen_row = columns[j]
        if len(values) > 1:  # every value known: all looked up in one C call (half the time)
            try:
                return np.fromiter(itemgetter(*values)(lookup), dtype=np.intp,
                                   count=len(values))
            except KeyError:  # missing or unseen values among them: one by one below
                pass
        idx = np.fromiter(map(lookup.get, values, repeat(-1)), dtype=np.intp,
                          count=len(values))
        for r in np.flatnonzero(idx < 0).tolist():  # NaN != NaN, so missing is looked
            v = values[r]                            # up apart, like unseen values
            row = missing_row if missing_row is not None and _is_missing(v) else unseen_row
            if row is None:
                raise ValueError(f"Found unknown categories [{v!r}] in column {j} "
                                 "during transform")
            idx[r] = row
        return idx

    def fn(X: np.ndarray) -> np.ndarray:
        parts = [columns[j][1][codes(j, X[:, j].tolist())] for j in range(len(columns))]
        out = np.hstack(parts) if len(parts) > 1 else parts[0]
        return out.astype(dtype, copy=False)

    def into(values: list[np.ndarray | list[Any]], out: np.ndarray) -> None:
        """`fn` on one array (or list) per column, written into `out` (float64 rows × the
        encoded width): no 2-D object array, no stacking of the parts, each column's rows
        gathered from its table straight into `out`."""
        for j, v in enumerate(values):  # a list is looked up faster than an array's items
            np.take(columns[j][1], codes(j, v if type(v) is list else v.tolist()), axis=0,
                    out=out[:, offsets[j]:offsets[j + 1]])

    fn.into = into  # type: ignore[attr-defined]
    return fn


def _cleaner(step: Any) -> Fn:
    """CategoricalCleaner: every value as text, missing values as one category."""
    from core.features.transformers import MISSING_LABEL

    def fn(X: np.ndarray) -> np.ndarray:
        out = np.empty(X.shape, dtype=object)
        for j in range(X.shape[1]):
            out[:, j] = [MISSING_LABEL if _is_missing(v) else str(v) for v in X[:, j].tolist()]
        return out

    return fn


def _scaler(sc: Any) -> Fn:
    mean = sc.mean_ if sc.with_mean else None
    scale = sc.scale_ if sc.with_std else None

    def fn(X: np.ndarray) -> np.ndarray:
        X = X.astype(np.float64, copy=True)
        if mean is not None:
            X -= mean
        if scale is not None:
            X /= scale
        return X

    return fn


def _imputer(imp: Any) -> Fn:
    """SimpleImputer, with its missing-value indicator columns when `add_indicator` is on
    (the workbench's own numeric preprocessing)."""
    mv = imp.missing_values
    if not (isinstance(mv, float) and math.isnan(mv)):
        raise Unsupported("imputer")
    stats = np.asarray(imp.statistics_)
    if stats.dtype.kind not in "fi" or np.isnan(stats).any():
        raise Unsupported("imputer statistics")
    indicator = getattr(imp, "indicator_", None) if imp.add_indicator else None
    if indicator is not None and (indicator.features != "missing-only" or indicator.sparse
                                  not in (False, "auto")):
        raise Unsupported("indicator")
    flagged = np.asarray(indicator.features_) if indicator is not None else None

    def fn(X: np.ndarray) -> np.ndarray:
        X = X.astype(np.float64, copy=True)
        missing = np.isnan(X)
        rows, cols = np.where(missing)
        X[rows, cols] = stats[cols]
        if flagged is not None:
            X = np.hstack([X, missing[:, flagged].astype(np.float64)])
        return X

    return fn


def _same(X: np.ndarray) -> np.ndarray:
    """passthrough"""
    return X


def _block(block: tuple[list[str], Fn, bool], arrays: Arrays) -> np.ndarray:
    """One ColumnTransformer block's output on the request's arrays."""
    cols, fn, numeric = block
    if numeric:
        X = np.column_stack([arrays[c] for c in cols]).astype(np.float64, copy=False)
    else:
        X = np.empty((len(arrays[cols[0]]), len(cols)), dtype=object)
        for j, c in enumerate(cols):
            X[:, j] = arrays[c]
    return np.asarray(fn(X))


def _step(step: Any) -> tuple[Fn, bool]:
    """(function, wants numeric input)."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    from core.features.transformers import CategoricalCleaner, DatetimeParts

    if step == "passthrough" or step is None:
        return _same, False
    if isinstance(step, Pipeline):
        parts = [_step(s) for _, s in step.steps]
        numeric = parts[0][1] if parts else False

        def fn(X: np.ndarray) -> np.ndarray:
            for f, _ in parts:
                X = f(X)
            return X

        return fn, numeric
    from sklearn.preprocessing import FunctionTransformer

    if type(step) is FunctionTransformer and step.func is None:  # a fitted "passthrough"
        return _same, False
    if type(step) in (OneHotEncoder, OrdinalEncoder):
        return _table_encoder(step), False
    if type(step) is CategoricalCleaner:
        return _cleaner(step), False
    if type(step) is DatetimeParts:  # its own parsing, on just the request's date columns
        return step.transform, False
    if type(step) is StandardScaler:
        return _scaler(step), True
    if type(step) is SimpleImputer:
        return _imputer(step), True
    raise Unsupported(type(step).__name__)


def _has_encoder(trans: Any) -> bool:
    return hasattr(trans, "categories_") or any(hasattr(s, "categories_")
                                                 for _, s in getattr(trans, "steps", []))


class TreeWalker:
    """A fitted HistGradientBoosting model scored without sklearn's per-call overhead.

    Every tree in one native call (`treewalk`, numba) when the splits are numeric: at 100 rows
    a third of the time of sklearn's 100 calls into its compiled walker, at one row a
    fortieth. Otherwise (categorical splits, numba unavailable) HistGradientBoosting's own
    compiled walker once per tree, skipping `_raw_predict`'s validation and `partial`s.
    Private sklearn API, so `compile_fast` keeps this only when it reproduces the estimator's
    own output; any mismatch or missing attribute leaves the estimator's methods in charge."""

    def __init__(self, est: Any, classes: np.ndarray | None = None) -> None:
        from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data

        if getattr(est, "_preprocessor", None) is not None:
            raise Unsupported("HistGradientBoosting with its own categorical preprocessing")
        self._walk = _predict_from_raw_data
        self.est = est
        self.classes = classes if classes is not None else getattr(est, "classes_", None)
        self.trees = [[(p.nodes, p.raw_left_cat_bitsets) for p in it] for it in est._predictors]
        self.known, self.fmap = est._bin_mapper.make_known_categories_bitsets()
        self.baseline = np.asarray(est._baseline_prediction, dtype=np.float64)
        self.native = treewalk.from_hist_gradient_boosting(est) if treewalk.available() else None

    def raw(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64)
        out = np.empty((X.shape[0], self.baseline.shape[-1]))  # C order: the kernel's one
        out[:] = self.baseline                                  # compiled signature
        if self.native is not None:
            self.native.add(X, out)
            return out
        tree = np.empty(X.shape[0])
        for trees in self.trees:
            for k, (nodes, bitsets) in enumerate(trees):
                self._walk(nodes, X, bitsets, self.known, self.fmap, 1, tree)
                out[:, k] += tree
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.est._loss.predict_proba(self.raw(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.classes is not None:
            return self.classes[np.argmax(self.predict_proba(X), axis=1)]
        return self.est._loss.link.inverse(self.raw(X).ravel())


class ForestWalker:
    """A random forest or extra-trees model scored in one native call over every tree
    (`treewalk`), or else through each tree's compiled `tree_.predict`: either way without
    the per-tree input validation and joblib dispatch of the forest's `predict_proba` (one
    row of a 450-tree forest: ~9 ms there). Kept, like TreeWalker, only when it reproduces
    the estimator on the probes."""

    def __init__(self, est: Any, classes: np.ndarray | None = None) -> None:
        if est.n_outputs_ != 1:
            raise Unsupported("multi-output forest")
        self.trees = [t.tree_ for t in est.estimators_]
        self.classifier = hasattr(est, "classes_")
        self.width = len(est.classes_) if self.classifier else 1
        self.classes = classes if classes is not None else getattr(est, "classes_", None)
        self.native = (treewalk.from_sklearn_trees(est.estimators_, self.width,
                                                   int(est.n_features_in_))
                       if treewalk.available() else None)

    def _mean(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)  # the dtype trees split on
        total = np.zeros((X.shape[0], self.width))
        if self.native is not None:  # float32 → float64 is exact: the same comparisons
            self.native.add(X, total)
            return total / len(self.trees)
        for tree in self.trees:
            total += tree.predict(X)[:, :self.width]
        return total / len(self.trees)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self._mean(X)

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.classifier:
            return self.classes[np.argmax(self._mean(X), axis=1)]
        return self._mean(X)[:, 0]


def _walkers() -> dict[type, type]:
    """Estimator type → the shortcut that scores it (declared as data)."""
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )

    return {HistGradientBoostingClassifier: TreeWalker, HistGradientBoostingRegressor: TreeWalker,
            RandomForestClassifier: ForestWalker, RandomForestRegressor: ForestWalker,
            ExtraTreesClassifier: ForestWalker, ExtraTreesRegressor: ForestWalker}


def _estimator(rest: Any, sparse: bool) -> Any:
    """What scores the transformed rows: a walker when one applies (alone or inside the
    AutoML's label wrapper), else the rest of the pipeline itself."""
    from core.automl.wrappers import LabelEncodedClassifier

    steps = getattr(rest, "steps", None)
    if sparse or steps is None or len(steps) != 1:
        return rest
    est, classes = steps[0][1], None
    if type(est) is LabelEncodedClassifier:
        est, classes = est.estimator_, est.classes_
    walker = _walkers().get(type(est))
    if walker is None:
        return rest
    try:
        return walker(est, classes)
    except (Unsupported, AttributeError, ImportError, ValueError):
        return rest


class FastPath:
    def __init__(self, blocks: list[tuple[list[str], Fn, bool]], rest: Any, sparse: bool) -> None:
        self.blocks = blocks
        self.rest = rest
        self.sparse = sparse
        self.scorer = _estimator(rest, sparse)
        self.spans: list[tuple[int, int]] | None = None  # each block's output columns

    def plan(self, arrays: Arrays) -> None:
        """Learn each block's output width from rows (the probes), so `transform` writes
        every block straight into one preallocated matrix; `_agrees` then checks it."""
        spans, at = [], 0
        for block in self.blocks:
            width = _block(block, arrays).shape[1]
            spans.append((at, at + width))
            at += width
        self.spans = spans

    def transform(self, arrays: Arrays) -> Any:
        if self.spans is None:
            parts = [_block(block, arrays) for block in self.blocks]
            Z = np.hstack(parts) if len(parts) > 1 else parts[0]
            if Z.dtype == object:
                Z = Z.astype(np.float64)
        else:
            n = len(arrays[self.blocks[0][0][0]])
            Z = np.empty((n, self.spans[-1][1]))
            for (cols, fn, numeric), (a, b) in zip(self.blocks, self.spans, strict=True):
                into = getattr(fn, "into", None)
                if into is not None:
                    into([arrays[c] for c in cols], Z[:, a:b])
                elif numeric and fn is _same:
                    for j, c in enumerate(cols):
                        Z[:, a + j] = arrays[c]
                else:
                    part = _block((cols, fn, numeric), arrays)
                    if part.shape != (n, b - a):
                        raise ValueError(f"a step gave {part.shape[1]} columns, "
                                         f"{b - a} expected")
                    Z[:, a:b] = part
        if self.sparse:
            from scipy import sparse

            return sparse.csr_matrix(Z)
        return Z

    def predict_proba(self, arrays: Arrays) -> np.ndarray:
        return self.scorer.predict_proba(self.transform(arrays))

    def predict(self, arrays: Arrays) -> np.ndarray:
        return self.scorer.predict(self.transform(arrays))


class EnsembleFast:
    """The AutoML's weighted ensemble with every member on its own lean path."""

    def __init__(self, members: list[FastPath], weights: list[float], ensemble: Any) -> None:
        self.members = members
        self.weights = weights
        self.regression = ensemble.task == Task.REGRESSION
        self.classes = None if self.regression else np.asarray(ensemble.classes_)

    def predict_proba(self, arrays: Arrays) -> np.ndarray:
        return sum(w * m.predict_proba(arrays) for m, w in zip(self.members, self.weights,
                                                                 strict=True))

    def predict(self, arrays: Arrays) -> np.ndarray:
        if self.regression:
            return sum(w * m.predict(arrays) for m, w in zip(self.members, self.weights,
                                                              strict=True))
        return self.classes[np.argmax(self.predict_proba(arrays), axis=1)]


def compile_fast(pipeline: Any, schema: list[SchemaColumn]) -> FastPath | EnsembleFast | None:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from core.automl.ensemble import WeightedEnsemble

    if type(pipeline) is WeightedEnsemble:  # lean only if every member is
        members = [compile_fast(p, schema) for p in pipeline.pipelines]
        if not members or any(not isinstance(m, FastPath) for m in members):
            return None
        return EnsembleFast(members, list(pipeline.weights), pipeline)  # type: ignore[arg-type]
    try:
        if not isinstance(pipeline, Pipeline) or len(pipeline.steps) < 2:
            return None
        ct = pipeline.steps[0][1]
        if type(ct) is not ColumnTransformer:
            return None
        if (getattr(ct, "_sklearn_output_config", {}) or {}).get("transform") not in (None,
                                                                                       "default"):
            return None
        names = {c["name"] for c in schema}
        blocks = []
        for _, trans, cols in ct.transformers_:
            if trans == "drop" or (hasattr(cols, "__len__") and len(cols) == 0):
                continue
            cols = list(cols)
            if not all(isinstance(c, str) and c in names for c in cols):
                return None
            fn, numeric = _step(trans)
            kinds = {c["name"]: c["kind"] for c in schema}
            if not numeric and all(kinds[c] == "numeric" for c in cols) and \
                    not _has_encoder(trans):
                numeric = True  # passthrough of numbers: keep them float
            blocks.append((cols, fn, numeric))
        if not blocks:
            return None
        fast = FastPath(blocks, pipeline[1:], bool(getattr(ct, "sparse_output_", False)))
        fast.plan(probe_arrays(ct, schema))
        return fast if _agrees(fast, ct, schema) else None
    except Unsupported:
        return None
    except Exception:  # anything unexpected: keep the ordinary path
        return None


def probe_arrays(ct: Any, schema: list[SchemaColumn], n: int = 12, *, odd: bool = False
                 ) -> Arrays:
    """Rows from the fitted categories and varied numbers; with `odd`, the first rows also
    hold missing values and a category the encoders never saw."""
    cats: dict[str, list[Any]] = {}
    for _, trans, cols in ct.transformers_:
        encoders = [trans] + [s for _, s in getattr(trans, "steps", [])]
        for enc in encoders:
            if hasattr(enc, "categories_"):
                for c, values in zip(cols, enc.categories_, strict=False):
                    cats[c] = [v for v in values.tolist() if not _is_missing(v)]
    out: Arrays = {}
    nums = [0.0, 1.5, -2.25, 3.0, 0.125, -0.5, 7.0, 2.0, -1.0, 0.75, 4.5, -3.0]
    for j, col in enumerate(schema):
        name = col["name"]
        if col["kind"] == "numeric" and not cats.get(name):
            values = [nums[(i + j) % len(nums)] for i in range(n)]
            if odd:
                values[0] = math.nan
            out[name] = np.array(values, dtype=np.float64)
            continue
        known = cats.get(name) or ["v0", "v1", "v2"]
        values = [known[(i + j) % len(known)] for i in range(n)]
        if odd:
            values[:2] = [None, "\x00probe-never-seen"]
        arr = np.empty(n, dtype=object)
        arr[:] = values
        out[name] = arr
    return out


def _dense(Z: Any) -> np.ndarray:
    return np.asarray(Z.toarray() if hasattr(Z, "toarray") else Z, dtype=np.float64)


def _agrees(fast: FastPath, ct: Any, schema: list[SchemaColumn]) -> bool:
    """The compiled transform equals the real one on known values, and on missing and unseen
    values either equals it or refuses them exactly when the real one does."""
    import pandas as pd

    arrays = probe_arrays(ct, schema)
    expected = _dense(ct.transform(pd.DataFrame(arrays)))
    got = fast.transform(arrays)
    dense = _dense(got)
    if not (expected.shape == dense.shape and np.allclose(expected, dense, equal_nan=True)):
        return False
    odd = probe_arrays(ct, schema, odd=True)
    try:
        odd_expected = _dense(ct.transform(pd.DataFrame(odd)))
    except (ValueError, TypeError):
        odd_expected = None
    try:
        odd_got = _dense(fast.transform(odd))
    except (ValueError, TypeError):
        odd_got = None
    if (odd_expected is None) != (odd_got is None):
        return False
    if odd_expected is not None and not (odd_expected.shape == odd_got.shape and np.allclose(
            odd_expected, odd_got, equal_nan=True)):
        return False
    if fast.scorer is not fast.rest:  # the shortcut must give the estimator's own answers
        try:
            holes = dense.copy()
            holes[::2, ::3] = np.nan  # missing values take their own branch in every split
            rows = np.vstack([dense, holes] * 2)  # small and large batches take different routes
            for method, X in itertools.product(("predict_proba", "predict"), (dense, rows)):
                if hasattr(fast.rest, method):
                    try:
                        want = np.asarray(getattr(fast.rest, method)(X))
                    except ValueError:  # e.g. missing values it cannot take: so must we
                        try:
                            getattr(fast.scorer, method)(X)
                        except ValueError:
                            continue
                        raise Unsupported("accepts what the estimator refuses") from None
                    have = np.asarray(getattr(fast.scorer, method)(X))
                    same = (np.allclose(want, have, rtol=1e-9, atol=1e-12)
                            if want.dtype.kind == "f" else np.array_equal(want, have))
                    if want.shape != have.shape or not same:
                        raise Unsupported(method)
        except Exception:
            fast.scorer = fast.rest
    return True
