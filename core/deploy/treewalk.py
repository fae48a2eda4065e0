"""Every tree of a fitted tree model walked in one native call (numba), for the lean path.

Why: sklearn scores a 100-tree HistGradientBoosting model with 100 calls into its compiled
walker, each with a fixed cost of a few microseconds plus the Python around it: ~2 ms for
100 rows in process, against ~0.5 ms here (docs/serving/native-walk.md). Here the
trees are flattened once at load into plain arrays (leaves point to themselves) and one jitted
loop walks every row through every tree, adding leaf values in sklearn's own order, so the
sums are the same floating-point operations in the same sequence. When every tree has at most
32 leaves (HistGradientBoosting's default) the same sums come from leaf bitmasks instead,
about twice as fast (core/deploy/leafmasks.py).

numba is a dependency, yet the walk degrades rather than breaks: `available()` is False when
numba cannot be imported or cannot compile here, and the callers keep sklearn's walkers.
The caller (`fastpath._agrees`) still checks the result against the estimator on probe rows
before trusting it."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from core.deploy import leafmasks

Walk = Callable[..., None]


def _walk(X, feat, thr, nan_left, left, right, val, roots, col, out):  # type: ignore[no-untyped-def]
    """Row by row, tree by tree: follow the splits (missing values where the node sends
    them) to a leaf, then add its values to the tree's output columns."""
    for r in range(X.shape[0]):
        for t in range(roots.shape[0]):
            node = roots[t]
            while left[node] != node:
                x = X[r, feat[node]]
                if x <= thr[node] or (x != x and nan_left[node]):
                    node = left[node]
                else:
                    node = right[node]
            for w in range(val.shape[1]):
                out[r, col[t] + w] += val[node, w]


def _walk_probe() -> tuple[Any, ...]:
    one = np.zeros(1, dtype=np.intp)
    return (np.zeros((1, 1)), one, np.zeros(1), np.zeros(1, dtype=np.bool_), one, one,
            np.zeros((1, 1)), one, one, np.zeros((1, 1)))


@functools.cache
def _kernel() -> Walk | None:
    """`_walk` compiled once per process; None when numba is missing or cannot compile."""
    return _jit(_walk, _walk_probe())


@functools.cache
def _mask_kernel() -> Walk | None:
    """`leafmasks.score` compiled once per process (None as `_kernel`)."""
    return _jit(leafmasks.score, leafmasks.probe())


def _jit(fn: Callable[..., None], probe: tuple[Any, ...]) -> Walk | None:
    """`fn` compiled by numba (from its on-disk cache when it can keep one), called once on
    `probe` so a failure shows here and not mid-request."""
    _cache_dir()
    try:
        import numba
    except ImportError:
        return None
    for cache in (True, False):  # an unwritable cache directory must not cost the speed
        try:
            compiled = numba.njit(cache=cache, nogil=True)(fn)
            compiled(*probe)
            return compiled
        except Exception:
            continue
    return None


def _cache_dir() -> None:
    """numba caches compiled code beside the source; an installed package may not be
    writable, so point it at a user cache directory unless the operator chose one."""
    if "NUMBA_CACHE_DIR" not in os.environ:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
        os.environ["NUMBA_CACHE_DIR"] = str(base / "ml-workbench" / "numba")


def available() -> bool:
    return _kernel() is not None


# A walk of at least this many row-trees (a batch of requests) is shared with a helper
# thread when `set_threads(2)`: the kernel holds no GIL, so the event loop's thread and the
# helper walk disjoint rows at once. Below it a hand-off costs more than half the walk saves.
SHARE_MIN_ROW_TREES = 40_000
CHUNKS = 8
_threads = 1
_helper: ThreadPoolExecutor | None = None
_helper_lock = threading.Lock()


def set_threads(n: int) -> None:
    """Threads that may walk one call's rows (1 or 2; the serving runtime sets it, see
    `Settings.walk_threads`)."""
    global _threads
    _threads = max(1, min(2, int(n)))


def _helper_pool() -> ThreadPoolExecutor:
    global _helper
    with _helper_lock:
        if _helper is None:
            _helper = ThreadPoolExecutor(1, thread_name_prefix="walk-helper")
        return _helper


def _forget_helper() -> None:
    """A forked child has no helper thread (its parent's executor would queue for ever)."""
    global _helper
    _helper = None


os.register_at_fork(after_in_child=_forget_helper)


class _Chunks:
    """Row ranges handed out one at a time to whichever thread asks. The caller walks
    chunks until none is left and then waits only for chunks the helper has started: a
    helper that was not scheduled in time (a busy machine) just finds nothing to do."""

    def __init__(self, n: int) -> None:
        step = -(-n // CHUNKS)
        self.ranges = [(a, min(a + step, n)) for a in range(0, n, step)]
        self.next = self.busy = 0
        self.closed = False
        self.error: BaseException | None = None
        self.idle = threading.Condition()

    def take(self) -> tuple[int, int] | None:
        with self.idle:
            if self.closed or self.next >= len(self.ranges):
                return None
            self.next += 1
            self.busy += 1
            return self.ranges[self.next - 1]

    def done(self) -> None:
        with self.idle:
            self.busy -= 1
            if not self.busy:
                self.idle.notify_all()

    def close(self) -> None:
        """No more chunks for anyone; returns when every started chunk is walked, raising
        what any chunk raised."""
        with self.idle:
            self.closed = True
            while self.busy:
                self.idle.wait()
        if self.error is not None:
            raise self.error

    def work(self, walk: Callable[[int, int], None]) -> None:
        while (span := self.take()) is not None:
            try:
                walk(*span)
            except BaseException as exc:  # raised by `close`, in the caller
                self.error = exc
            finally:
                self.done()


class Forest:
    """Trees as one set of flat arrays. `add(X, out)` adds every tree's leaf values to `out`
    (rows × outputs, already holding the baseline) in tree order."""

    def __init__(self, trees: list[dict[str, np.ndarray]], cols: list[int],
                 n_features: int) -> None:
        for tree in trees:
            _check(tree, n_features)
        parts: dict[str, list[np.ndarray]] = {k: [] for k in
                                              ("feat", "thr", "nan_left", "left", "right", "val")}
        roots, offset = [], 0
        for tree in trees:
            leaf = tree["leaf"]
            me = np.arange(len(leaf)) + offset
            parts["feat"].append(np.where(leaf, 0, tree["feat"]))
            parts["thr"].append(np.where(leaf, np.inf, tree["thr"]))
            parts["nan_left"].append(tree["nan_left"] | leaf)
            parts["left"].append(np.where(leaf, me, tree["left"] + offset))
            parts["right"].append(np.where(leaf, me, tree["right"] + offset))
            parts["val"].append(tree["val"].reshape(len(leaf), -1))
            roots.append(offset)
            offset += len(leaf)
        self.feat = np.concatenate(parts["feat"]).astype(np.intp)
        self.thr = np.concatenate(parts["thr"]).astype(np.float64)
        self.nan_left = np.concatenate(parts["nan_left"]).astype(np.bool_)
        self.left = np.concatenate(parts["left"]).astype(np.intp)
        self.right = np.concatenate(parts["right"]).astype(np.intp)
        self.val = np.ascontiguousarray(np.concatenate(parts["val"]), dtype=np.float64)
        self.roots = np.asarray(roots, dtype=np.intp)
        self.cols = np.asarray(cols, dtype=np.intp)
        self.n_features = n_features
        # trees of at most 32 leaves: scored by leaf bitmasks, the same bits ~2x faster
        self.masks = leafmasks.build(trees, n_features) if trees else None
        self._chosen: tuple[Walk, tuple[Any, ...]] | None = None

    def _scorer(self) -> tuple[Walk, tuple[Any, ...]]:
        """(kernel, its arguments between X and out): the leaf masks when the trees have
        them and they compile here, else the node-by-node walk. Chosen at the first call."""
        if self._chosen is None:
            if self.masks is not None and (score := _mask_kernel()) is not None:
                self._chosen = score, (*self.masks.args(), self.cols)
            elif (walk := _kernel()) is not None:
                self._chosen = walk, (self.feat, self.thr, self.nan_left, self.left,
                                      self.right, self.val, self.roots, self.cols)
            else:
                raise RuntimeError("numba is not available")
        return self._chosen

    def add(self, X: np.ndarray, out: np.ndarray) -> None:
        walk, args = self._scorer()
        if X.ndim != 2 or X.shape[1] != self.n_features or out.shape[0] != X.shape[0]:
            raise ValueError(f"expected rows of {self.n_features} features, got {X.shape}")
        X = np.ascontiguousarray(X, dtype=np.float64)
        if _threads < 2 or len(X) * len(self.roots) < SHARE_MIN_ROW_TREES \
                or not out.flags.c_contiguous:
            walk(X, *args, out)
            return
        chunks = _Chunks(len(X))

        def rows(a: int, b: int) -> None:
            walk(X[a:b], *args, out[a:b])

        _helper_pool().submit(chunks.work, rows)  # never waited on: see _Chunks
        chunks.work(rows)
        chunks.close()


def _check(tree: dict[str, np.ndarray], n_features: int) -> None:
    """The kernel does not bound-check, so a stored tree must prove it cannot send it out of
    range or round in circles: every split reads a feature the model has and points to
    children after itself (both sklearn builders number nodes that way) inside the tree."""
    leaf = np.asarray(tree["leaf"], dtype=bool)
    n = len(leaf)
    split = ~leaf
    me = np.arange(n)
    feat, left, right = (np.asarray(tree[k])[split] for k in ("feat", "left", "right"))
    if n == 0 or leaf[0] and n > 1 or len(tree["val"]) != n or not (
            np.all((feat >= 0) & (feat < n_features))
            and np.all((left > me[split]) & (left < n))
            and np.all((right > me[split]) & (right < n))):
        raise ValueError("a tree's nodes are not a well-formed tree")


def from_hist_gradient_boosting(est: Any) -> Forest | None:
    """A fitted HistGradientBoosting model's trees (None when a split is categorical: those
    stay with sklearn's walker). Tree (iteration i, output k) adds to column k."""
    trees, cols = [], []
    for iteration in est._predictors:
        for k, predictor in enumerate(iteration):
            nodes = predictor.nodes
            if nodes["is_categorical"].any():
                return None
            trees.append({"leaf": nodes["is_leaf"].astype(bool), "feat": nodes["feature_idx"],
                          "thr": nodes["num_threshold"],
                          "nan_left": nodes["missing_go_to_left"].astype(bool),
                          "left": nodes["left"], "right": nodes["right"],
                          "val": nodes["value"]})
            cols.append(k)
    return Forest(trees, cols, int(est.n_features_in_))


def from_sklearn_trees(estimators: list[Any], width: int, n_features: int) -> Forest:
    """sklearn decision trees (a random forest's or extra-trees'), each adding its leaf's
    first `width` values to columns 0..width-1. Nodes send missing values where the fitted
    tree says (`missing_go_to_left`; older trees without it send them right, as sklearn)."""
    trees = []
    for est in estimators:
        t = est.tree_
        leaf = t.children_left == -1
        nan_left = getattr(t, "missing_go_to_left", np.zeros(t.node_count, dtype=np.uint8))
        trees.append({"leaf": leaf, "feat": t.feature, "thr": t.threshold,
                      "nan_left": np.asarray(nan_left).astype(bool),
                      "left": t.children_left, "right": t.children_right,
                      "val": t.value[:, 0, :width]})
    return Forest(trees, [0] * len(trees), n_features)
