"""Trees scored by leaf bitmasks (core/deploy/leafmasks.py): the leaf the node-by-node walk
reaches, so the same bits, on ties, missing values, infinities, and trees crafted to be odd;
a forest it cannot order stays with the walk."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)

from core.deploy import leafmasks, treewalk

pytestmark = pytest.mark.skipif(not treewalk.available(), reason="numba cannot compile here")


def _walked(forest: treewalk.Forest) -> treewalk.Forest:
    """The same trees, scored node by node (the reference)."""
    walk = copy.copy(forest)
    walk.masks = None
    walk._chosen = None
    return walk


def _both(forest: treewalk.Forest, X: np.ndarray, width: int = 1,
          baseline: np.ndarray | float = 0.0) -> tuple[np.ndarray, ...]:
    """(sums by the masks, sums by the walk), each added to `baseline` tree by tree."""
    by_masks, by_walk = np.zeros((len(X), width)), np.zeros((len(X), width))
    by_masks[:] = by_walk[:] = baseline
    forest.add(X, by_masks)
    _walked(forest).add(X, by_walk)
    return by_masks, by_walk


def _data(n: int = 600, classes: int = 2, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    X[rng.random(X.shape) < 0.15] = np.nan
    y = (np.nan_to_num(X[:, 0]) + np.nan_to_num(X[:, 1]) ** 2 > 0.5).astype(int)
    if classes > 2:
        y = y + (np.nan_to_num(X[:, 2]) > 0.3)
    return X, y


def _edge_rows(forest: treewalk.Forest, X: np.ndarray) -> np.ndarray:
    """Rows whose values sit exactly on the split thresholds (a tie goes left), plus
    missing values, ±infinity and -0.0 in every column."""
    rows = [X]
    splits = forest.left != np.arange(len(forest.left))
    for f in range(forest.n_features):
        thr = forest.thr[splits & (forest.feat == f)]
        on = np.repeat(X[:1], len(thr), axis=0)
        on[:, f] = thr
        rows.append(on)
    for value in (np.nan, np.inf, -np.inf, -0.0):
        odd = X[:8].copy()
        odd[:, np.arange(8) % X.shape[1]] = value
        rows.append(odd)
    return np.vstack(rows)


@pytest.mark.parametrize("classes", [2, 3])
def test_boosted_classifiers_take_the_masks_and_score_the_walks_bits(classes: int) -> None:
    X, y = _data(classes=classes)
    est = HistGradientBoostingClassifier(max_iter=25, random_state=0).fit(X, y)
    forest = treewalk.from_hist_gradient_boosting(est)
    assert forest.masks is not None  # 31 leaves at most: sklearn's default
    rows = _edge_rows(forest, X)
    width = 1 if classes == 2 else classes
    by_masks, by_walk = _both(forest, rows, width, est._baseline_prediction)
    assert np.array_equal(by_masks, by_walk)
    assert np.array_equal(by_masks, est._raw_predict(rows))


@pytest.mark.parametrize(("leaves", "masked"), [(32, True), (33, False)])
def test_thirty_two_leaves_take_the_masks_and_more_stay_with_the_walk(leaves: int,
                                                                        masked: bool) -> None:
    X, y = _data(n=3000)
    target = y + np.nan_to_num(X[:, 3]) * np.nan_to_num(X[:, 4])
    est = HistGradientBoostingRegressor(max_iter=5, max_leaf_nodes=leaves, min_samples_leaf=5,
                                        random_state=0).fit(X, target)
    assert max(int(p.nodes["is_leaf"].sum()) for it in est._predictors for p in it) == leaves
    forest = treewalk.from_hist_gradient_boosting(est)
    assert (forest.masks is not None) is masked
    raw = np.full((len(X), 1), est._baseline_prediction, dtype=np.float64)
    forest.add(X, raw)
    assert np.array_equal(raw.ravel(), est._raw_predict(X).ravel())


def test_small_forest_trees_take_the_masks_too() -> None:
    X, y = _data(classes=3)
    X = np.nan_to_num(X)
    est = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0).fit(X, y)
    forest = treewalk.from_sklearn_trees(est.estimators_, 3, X.shape[1])
    assert forest.masks is not None
    by_masks, by_walk = _both(forest, _edge_rows(forest, X), 3)
    assert np.array_equal(by_masks, by_walk)


def _tree(n_splits: int, *, thr: float = 0.0) -> dict:
    """A chain: split i sends x <= thr + i to a leaf on the left, the rest right."""
    n = 2 * n_splits + 1
    leaf = np.ones(n, dtype=bool)
    left, right = np.zeros(n, dtype=np.intp), np.zeros(n, dtype=np.intp)
    feat, thrs = np.zeros(n, dtype=np.intp), np.zeros(n)
    for i in range(n_splits):
        node = 2 * i
        leaf[node] = False
        left[node], right[node] = node + 1, node + 2
        thrs[node] = thr + i
    return {"leaf": leaf, "feat": feat, "thr": thrs, "nan_left": np.zeros(n, dtype=bool),
            "left": left, "right": right, "val": np.arange(n, dtype=np.float64)}


def test_crafted_trees_score_as_walked_or_stay_with_the_walk() -> None:
    X = np.array([[-1.0], [0.0], [0.5], [3.0], [40.0], [np.nan], [np.inf], [-np.inf]])
    deep = treewalk.Forest([_tree(31), _tree(40)], [0, 0], n_features=1)
    assert deep.masks is None  # 41 leaves in the second tree: no recursion error either
    chain = treewalk.Forest([_tree(31), _tree(5, thr=-2.0)], [0, 0], n_features=1)
    assert chain.masks is not None
    assert np.array_equal(*_both(chain, X))
    nan_thr = _tree(3)
    nan_thr["thr"][2] = np.nan  # no order of thresholds places it: the walk scores it
    assert leafmasks.build([nan_thr], 1) is None
    forest = treewalk.Forest([nan_thr], [0], n_features=1)
    out = np.zeros((len(X), 1))
    forest.add(X, out)
    assert np.array_equal(out, _both(forest, X)[1])
    shared = _tree(2)  # two splits sharing one leaf: still a walk of well-ordered nodes
    shared["right"][2] = 3
    assert np.array_equal(*_both(treewalk.Forest([shared], [0], n_features=1), X))


def _boosted(classes: int) -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    X, y = _data(classes=classes)
    return HistGradientBoostingClassifier(max_iter=25, random_state=0).fit(X, y), X


@pytest.mark.parametrize("classes", [2, 3])
@pytest.mark.parametrize("step", [1, 2, 3, 8])
def test_prefix_masks_score_the_walks_bits_at_every_block_boundary(
        monkeypatch: pytest.MonkeyPatch, step: int, classes: int) -> None:
    """Features tested by many splits take whole blocks of failed splits from the prefix
    masks: with a step of 1 a block ends after every split, so every tie and every prefix
    length crosses a boundary somewhere."""
    monkeypatch.setattr(leafmasks, "PREFIX_STEP", step)
    est, X = _boosted(classes)
    forest = treewalk.from_hist_gradient_boosting(est)
    masks = forest.masks
    assert masks is not None and masks.step == step
    assert (masks.cstart >= 0).sum() >= 3 and len(masks.cmask) > 0  # the prefixes are used
    rows = _edge_rows(forest, X)
    width = 1 if classes == 2 else classes
    by_masks, by_walk = _both(forest, rows, width, est._baseline_prediction)
    assert np.array_equal(by_masks, by_walk)
    assert np.array_equal(by_masks, est._raw_predict(rows))


def test_each_prefix_mask_is_the_and_of_its_features_first_splits() -> None:
    est, _ = _boosted(3)
    m = treewalk.from_hist_gradient_boosting(est).masks
    assert m is not None
    for f in np.flatnonzero(m.cstart >= 0).tolist():
        packs = m.fpack[m.fstart[f]:m.fstart[f + 1]].tolist()
        for b in range(1, len(packs) // m.step + 1):
            want = [(1 << 32) - 1] * len(m.lstart)
            for p in packs[:b * m.step]:
                want[p >> 32] &= p & ((1 << 32) - 1)
            assert m.cmask[m.cstart[f] + b - 1].tolist() == want


def test_prefix_masks_past_their_memory_bound_take_a_longer_step(
        monkeypatch: pytest.MonkeyPatch) -> None:
    est, X = _boosted(2)
    monkeypatch.setattr(leafmasks, "PREFIX_BYTES", 25 * 4 * 12)  # 12 rows of 25 trees
    forest = treewalk.from_hist_gradient_boosting(est)
    masks = forest.masks
    assert masks is not None and masks.step > leafmasks.PREFIX_STEP
    assert 0 < masks.cmask.nbytes <= leafmasks.PREFIX_BYTES
    by_masks, by_walk = _both(forest, _edge_rows(forest, X), 1, est._baseline_prediction)
    assert np.array_equal(by_masks, by_walk)
