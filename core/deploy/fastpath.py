"""A lean per-request path for the common fitted preprocessing: a ColumnTransformer of
OneHotEncoder / StandardScaler / SimpleImputer / passthrough (alone or in small Pipelines) is
replayed with NumPy on the request's column arrays, skipping pandas and the ColumnTransformer's
per-call overhead; the estimator after it is called as usual.

`compile_fast(pipeline, schema)` returns None unless every step is supported AND the compiled
transform reproduces the real one on probe rows built from the schema and the fitted
categories. So a pipeline it does not understand simply takes the ordinary path."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from itertools import repeat
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]
Fn = Callable[[np.ndarray], np.ndarray]


class Unsupported(Exception):
    pass


def _onehot(enc: Any) -> Fn:
    if getattr(enc, "drop", None) is not None or getattr(enc, "_infrequent_enabled", False):
        raise Unsupported("drop / infrequent categories")
    if enc.handle_unknown not in ("ignore", "error", "infrequent_if_exist"):
        raise Unsupported(enc.handle_unknown)
    strict = enc.handle_unknown == "error"
    maps, widths = [], []
    for cats in enc.categories_:
        m: dict[Any, int] = {}
        nan_idx = None
        for i, c in enumerate(cats.tolist()):
            if c is None or (isinstance(c, float) and math.isnan(c)):
                nan_idx = i
            else:
                m[c] = i
        maps.append((m, nan_idx))  # missing values are looked up apart: NaN != NaN
        widths.append(len(cats))
    offsets = np.cumsum([0, *widths])
    dtype = getattr(enc, "dtype", np.float64)

    def fn(X: np.ndarray) -> np.ndarray:
        n = X.shape[0]
        out = np.zeros((n, int(offsets[-1])), dtype=dtype)
        for j, (m, nan_idx) in enumerate(maps):
            values = X[:, j].tolist()
            idx = np.fromiter(map(m.get, values, repeat(-1)), dtype=np.int64, count=n)
            for r in np.flatnonzero(idx < 0).tolist():  # None/NaN, or a category never seen
                v = values[r]
                if nan_idx is not None and (v is None or (isinstance(v, float) and
                                                          math.isnan(v))):
                    idx[r] = nan_idx
                elif strict:
                    raise ValueError(f"Found unknown categories [{v!r}] in column {j} "
                                     "during transform")
            hit = idx >= 0
            out[np.flatnonzero(hit), offsets[j] + idx[hit]] = 1
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


def _step(step: Any) -> tuple[Fn, bool]:
    """(function, wants numeric input)."""
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if step == "passthrough" or step is None:
        return (lambda X: X), False
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
        return (lambda X: X), False
    if type(step) is OneHotEncoder:
        return _onehot(step), False
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

    Up to SMALL rows, all trees advance together one level per step in NumPy (leaves point to
    themselves, so `depth` steps reach every leaf): a 1-row answer from 100 trees in a tenth of
    the time of 100 calls into the compiled walker. Larger batches call HistGradientBoosting's
    own compiled walker once per tree, skipping `_raw_predict`'s validation and `partial`s.
    Private sklearn API, so `compile_fast` keeps this only when it reproduces the estimator's
    own output; any mismatch or missing attribute leaves the estimator's methods in charge."""

    SMALL = 16  # rows; above this the compiled per-tree walker is faster (bench/serving.py)

    def __init__(self, est: Any) -> None:
        from sklearn.ensemble._hist_gradient_boosting._predictor import _predict_from_raw_data

        if getattr(est, "_preprocessor", None) is not None:
            raise Unsupported("HistGradientBoosting with its own categorical preprocessing")
        self._walk = _predict_from_raw_data
        self.est = est
        self.trees = [[(p.nodes, p.raw_left_cat_bitsets) for p in it] for it in est._predictors]
        self.known, self.fmap = est._bin_mapper.make_known_categories_bitsets()
        self.baseline = np.asarray(est._baseline_prediction, dtype=np.float64)
        self.flat = self._flatten()

    def _flatten(self) -> dict[str, Any] | None:
        """All trees' nodes in one set of arrays (None when a split is categorical)."""
        cols: dict[str, list[np.ndarray]] = {k: [] for k in
                                             ("feat", "thr", "nan_left", "left", "right", "val")}
        roots, offset, depth = [], 0, 0
        for trees in self.trees:
            for nodes, _ in trees:
                if nodes["is_categorical"].any():
                    return None
                leaf = nodes["is_leaf"].astype(bool)
                me = np.arange(len(nodes)) + offset
                cols["feat"].append(np.where(leaf, 0, nodes["feature_idx"]))
                cols["thr"].append(np.where(leaf, np.inf, nodes["num_threshold"]))
                cols["nan_left"].append(nodes["missing_go_to_left"].astype(bool) | leaf)
                cols["left"].append(np.where(leaf, me, nodes["left"] + offset))
                cols["right"].append(np.where(leaf, me, nodes["right"] + offset))
                cols["val"].append(np.where(leaf, nodes["value"], 0.0))
                roots.append(offset)
                offset += len(nodes)
                depth = max(depth, int(nodes["depth"].max()))
        flat: dict[str, Any] = {k: np.concatenate(v) for k, v in cols.items()}
        for k in ("feat", "left", "right"):
            flat[k] = flat[k].astype(np.intp)
        flat["roots"] = np.asarray(roots, dtype=np.intp)
        flat["depth"] = depth
        return flat

    def _raw_small(self, X: np.ndarray) -> np.ndarray:
        f = self.flat
        n, n_features = X.shape
        cells = X.ravel()
        row_start = (np.arange(n) * n_features)[:, None]
        idx = np.broadcast_to(f["roots"], (n, len(f["roots"])))
        for _ in range(f["depth"]):
            x = cells[row_start + f["feat"][idx]]
            left = (x <= f["thr"][idx]) | (np.isnan(x) & f["nan_left"][idx])
            idx = np.where(left, f["left"][idx], f["right"][idx])
        k = self.baseline.shape[-1]
        return f["val"][idx].reshape(n, -1, k).sum(axis=1) + self.baseline

    def raw(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float64)
        if self.flat is not None and X.shape[0] <= self.SMALL:
            return self._raw_small(X)
        out = np.empty((X.shape[0], self.baseline.shape[-1]), order="F")
        out[:] = self.baseline
        tree = np.empty(X.shape[0])
        for trees in self.trees:
            for k, (nodes, bitsets) in enumerate(trees):
                self._walk(nodes, X, bitsets, self.known, self.fmap, 1, tree)
                out[:, k] += tree
        return out

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.est._loss.predict_proba(self.raw(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        if hasattr(self.est, "classes_"):
            raw = self.raw(X)
            codes = (raw.ravel() > 0).astype(int) if raw.shape[1] == 1 else raw.argmax(axis=1)
            return self.est.classes_[codes]
        return self.est._loss.link.inverse(self.raw(X).ravel())


def _estimator(rest: Any, sparse: bool) -> Any:
    """What scores the transformed rows: a shortcut when one applies, else the rest of the
    pipeline itself."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    steps = getattr(rest, "steps", None)
    if not sparse and steps is not None and len(steps) == 1 and \
            type(steps[0][1]) in (HistGradientBoostingClassifier, HistGradientBoostingRegressor):
        try:
            return TreeWalker(steps[0][1])
        except (Unsupported, AttributeError, ImportError):
            pass
    return rest


class FastPath:
    def __init__(self, blocks: list[tuple[list[str], Fn, bool]], rest: Any, sparse: bool) -> None:
        self.blocks = blocks
        self.rest = rest
        self.sparse = sparse
        self.scorer = _estimator(rest, sparse)

    def transform(self, arrays: Arrays) -> Any:
        parts = []
        for cols, fn, numeric in self.blocks:
            if numeric:
                X = np.column_stack([arrays[c].astype(np.float64) for c in cols])
            else:
                X = np.empty((len(arrays[cols[0]]), len(cols)), dtype=object)
                for j, c in enumerate(cols):
                    X[:, j] = arrays[c]
            parts.append(np.asarray(fn(X)))
        Z = np.hstack(parts) if len(parts) > 1 else parts[0]
        if Z.dtype == object:
            Z = Z.astype(np.float64)
        if self.sparse:
            from scipy import sparse

            return sparse.csr_matrix(Z)
        return Z

    def predict_proba(self, arrays: Arrays) -> np.ndarray:
        return self.scorer.predict_proba(self.transform(arrays))

    def predict(self, arrays: Arrays) -> np.ndarray:
        return self.scorer.predict(self.transform(arrays))


def compile_fast(pipeline: Any, schema: list[dict[str, Any]]) -> FastPath | None:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

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
        return fast if _agrees(fast, ct, schema) else None
    except Unsupported:
        return None
    except Exception:  # anything unexpected: keep the ordinary path
        return None


def probe_arrays(ct: Any, schema: list[dict[str, Any]], n: int = 12) -> Arrays:
    """Rows from the fitted categories (including some unseen/None) and varied numbers."""
    cats: dict[str, list[Any]] = {}
    for _, trans, cols in ct.transformers_:
        encoders = [trans] + [s for _, s in getattr(trans, "steps", [])]
        for enc in encoders:
            if hasattr(enc, "categories_"):
                for c, values in zip(cols, enc.categories_, strict=False):
                    cats[c] = [v for v in values.tolist()
                               if not (isinstance(v, float) and math.isnan(v))]
    out: Arrays = {}
    nums = [0.0, 1.5, -2.25, 3.0, 0.125, -0.5, 7.0, 2.0, -1.0, 0.75, 4.5, -3.0]
    for j, col in enumerate(schema):
        name = col["name"]
        if name in cats and cats[name]:
            values = cats[name]
            arr = np.empty(n, dtype=object)
            arr[:] = [values[(i + j) % len(values)] for i in range(n)]
            out[name] = arr
        elif col["kind"] == "numeric":
            out[name] = np.array([nums[(i + j) % len(nums)] for i in range(n)])
        else:
            arr = np.empty(n, dtype=object)
            arr[:] = [f"v{i % 3}" for i in range(n)]
            out[name] = arr
    return out


def _agrees(fast: FastPath, ct: Any, schema: list[dict[str, Any]]) -> bool:
    import pandas as pd

    arrays = probe_arrays(ct, schema)
    expected = ct.transform(pd.DataFrame(arrays))
    got = fast.transform(arrays)
    if hasattr(expected, "toarray"):
        expected = expected.toarray()
    dense = got.toarray() if hasattr(got, "toarray") else got
    expected = np.asarray(expected, dtype=np.float64)
    if not (expected.shape == dense.shape and np.allclose(expected, dense, equal_nan=True)):
        return False
    if fast.scorer is not fast.rest:  # the shortcut must give the estimator's own answers
        try:
            holes = dense.copy()
            holes[::2, ::3] = np.nan  # missing values take their own branch in every split
            rows = np.vstack([dense, holes] * 2)  # small and large batches take different routes
            for method, X in itertools.product(("predict_proba", "predict"), (dense, rows)):
                if hasattr(fast.rest, method):
                    want = np.asarray(getattr(fast.rest, method)(X))
                    have = np.asarray(getattr(fast.scorer, method)(X))
                    same = (np.allclose(want, have, rtol=1e-9, atol=1e-12)
                            if want.dtype.kind == "f" else np.array_equal(want, have))
                    if want.shape != have.shape or not same:
                        raise Unsupported(method)
        except Exception:
            fast.scorer = fast.rest
    return True
