"""The one-call native tree walk (core/deploy/treewalk.py): the same numbers as sklearn, and
no trust in a stored tree's indices."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import (
    ExtraTreesRegressor,
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)

from core.deploy import treewalk
from core.deploy.fastpath import ForestWalker, TreeWalker

pytestmark = pytest.mark.skipif(not treewalk.available(), reason="numba cannot compile here")


def _data(n: int = 400, classes: int = 2) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(n, 6))
    X[rng.random(X.shape) < 0.1] = np.nan  # missing values take their own branch
    y = (np.nan_to_num(X[:, 0]) * 2 + np.nan_to_num(X[:, 1]) > 0).astype(int)
    if classes > 2:
        y = y + (np.nan_to_num(X[:, 2]) > 0.5)
    return X, y


@pytest.mark.parametrize("classes", [2, 3])
def test_boosted_classifier_scores_are_bit_for_bit_sklearns(classes: int) -> None:
    X, y = _data(classes=classes)
    est = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y)
    walker = TreeWalker(est)
    assert walker.native is not None
    for rows in (X[:1], X[:16], X):  # one row, a small and a large batch
        assert np.array_equal(walker.raw(rows), est._raw_predict(rows))
        assert np.array_equal(walker.predict(rows), est.predict(rows))


def test_boosted_regressor_agrees_with_sklearn() -> None:
    X, y = _data()
    target = y + np.nan_to_num(X[:, 3])
    est = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(X, target)
    walker = TreeWalker(est)
    assert np.array_equal(walker.predict(X), est.predict(X))


def test_forests_agree_with_sklearn() -> None:
    X, y = _data(classes=3)
    X = np.nan_to_num(X)  # forests here are fitted without missing values
    forest = RandomForestClassifier(n_estimators=12, random_state=0).fit(X, y)
    walker = ForestWalker(forest)
    assert walker.native is not None
    assert np.allclose(walker.predict_proba(X), forest.predict_proba(X), rtol=1e-12, atol=0)
    assert np.array_equal(walker.predict(X), forest.predict(X))
    extra = ExtraTreesRegressor(n_estimators=8, random_state=0).fit(X, y.astype(float))
    assert np.allclose(ForestWalker(extra).predict(X), extra.predict(X), rtol=1e-12, atol=0)


def test_categorical_splits_stay_with_sklearn() -> None:
    rng = np.random.default_rng(0)
    X = np.column_stack([rng.integers(0, 5, 300), rng.normal(size=300)]).astype(float)
    y = (X[:, 0] % 2 == 0).astype(int)
    est = HistGradientBoostingClassifier(max_iter=10, categorical_features=[0]).fit(X, y)
    assert treewalk.from_hist_gradient_boosting(est) is None


def _tree(**changes: object) -> dict:
    """Three nodes: a split on feature 0 into two leaves."""
    tree = {"leaf": np.array([False, True, True]), "feat": np.array([0, 0, 0]),
            "thr": np.array([0.5, 0, 0]), "nan_left": np.array([True, False, False]),
            "left": np.array([1, 0, 0]), "right": np.array([2, 0, 0]),
            "val": np.array([0.0, -1.0, 1.0])}
    tree.update(changes)
    return tree


@pytest.mark.parametrize("bad", [
    {"feat": np.array([5, 0, 0])},           # a feature the model does not have: a stray read
    {"left": np.array([0, 0, 0])},           # a split pointing to itself: an endless walk
    {"right": np.array([9, 0, 0])},          # a child outside the tree
    {"leaf": np.array([False, False, True]), "left": np.array([1, 0, 0]),
     "right": np.array([2, 0, 0])},          # node 1 splits back to node 0: a cycle
])
def test_a_malformed_stored_tree_is_refused_before_any_walk(bad: dict) -> None:
    assert treewalk.Forest([_tree()], [0], n_features=2)  # the well-formed one is taken
    with pytest.raises(ValueError, match="well-formed"):
        treewalk.Forest([_tree(**bad)], [0], n_features=2)


def test_rows_of_the_wrong_width_are_refused() -> None:
    forest = treewalk.Forest([_tree()], [0], n_features=2)
    out = np.zeros((1, 1))
    forest.add(np.array([[0.2, 9.0]]), out)
    assert out[0, 0] == -1.0
    with pytest.raises(ValueError, match="2 features"):
        forest.add(np.zeros((1, 1)), np.zeros((1, 1)))


def test_a_shared_walk_gives_the_same_bits_from_threads_at_once() -> None:
    """A big batch is walked by the caller and a helper thread (set_threads(2)): the same
    sums as one thread, also while other threads walk other batches at the same time (the
    event loop and the predict thread share the helper)."""
    from concurrent.futures import ThreadPoolExecutor

    X, y = _data(n=3000, classes=3)
    est = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y)
    walker = TreeWalker(est)
    assert len(X) * est.n_iter_ * 3 >= treewalk.SHARE_MIN_ROW_TREES  # the shared route
    want = est._raw_predict(X)
    try:
        treewalk.set_threads(2)
        assert np.array_equal(walker.raw(X), want)
        with ThreadPoolExecutor(3) as pool:
            got = list(pool.map(lambda i: walker.raw(X[i:]), range(40)))
        for i, raw in enumerate(got):
            assert np.array_equal(raw, want[i:])
    finally:
        treewalk.set_threads(1)


def test_a_chunk_that_fails_fails_the_call() -> None:
    """Rows of the wrong width are refused before any thread walks them; a walk that raises
    in a chunk raises in the caller, and the helper stays usable."""
    X, y = _data(n=3000)
    est = HistGradientBoostingClassifier(max_iter=30, random_state=0).fit(X, y)
    forest = treewalk.from_hist_gradient_boosting(est)
    out = np.zeros((len(X), 1))
    chunks = treewalk._Chunks(len(X))

    def walk(a: int, b: int) -> None:
        if a > 0:
            raise FloatingPointError(f"rows {a}:{b}")
        forest.add(X[a:b], out[a:b])

    chunks.work(walk)
    with pytest.raises(FloatingPointError):
        chunks.close()
    try:
        treewalk.set_threads(2)
        with pytest.raises(ValueError, match="features"):
            forest.add(X[:, :3], out)
        out[:] = est._baseline_prediction
        forest.add(X, out)
        assert np.array_equal(out, est._raw_predict(X))
    finally:
        treewalk.set_threads(1)
