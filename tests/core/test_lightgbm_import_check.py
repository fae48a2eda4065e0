"""An imported LightGBM model is read the way LightGBM reads it before anything is built
(core/registry/trust.py, review s8 H1): a tree whose arrays LightGBM would read differently
from the checker (a blank line then benign duplicates), a header promising millions of
output columns, linear trees and iteration counts that do not add up are refused with the
tree or key named. No crafted model is ever loaded or predicted here (they crash the
process); only the untouched model is."""

from __future__ import annotations

import numpy as np
import pytest

from core.automl.boosters import LightGBMClassifier, LightGBMRegressor
from core.errors import ArtifactIntegrityError
from core.registry.skops_io import sio
from core.registry.trust import check_imported_boosters


def _fitted(classes: int | None = None):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    if classes is None:
        return LightGBMRegressor(n_estimators=3, num_leaves=3, early_stopping_rounds=0).fit(
            X, X[:, 0] + rng.normal(size=300))
    y = np.digitize(X[:, 0], np.linspace(-1, 1, classes - 1))
    return LightGBMClassifier(n_estimators=3, num_leaves=3, early_stopping_rounds=0).fit(X, y)


def _without_tree_sizes(text: str) -> str:
    return "\n".join(ln for ln in text.split("\n") if not ln.startswith("tree_sizes="))


def _blank_line_duplicate(text: str) -> str:
    """The review's repro: a hostile split feature, a blank line (where LightGBM stops reading
    the tree), then the benign value a last-wins reader would check."""
    head, _, rest = text.partition("Tree=0\n")
    block, _, tail = rest.partition("\n\n\n")
    first = [ln for ln in block.split("\n") if ln.startswith("split_feature=")][0]
    hostile = first.replace("split_feature=", "split_feature=400000000 ", 1).rsplit(" ", 1)[0]
    bad = block.replace(first, hostile) + "\n\n" + first
    return f"{head}Tree=0\n{bad}\n\n\n{tail}"


CRAFTED = [
    (None, lambda t: _blank_line_duplicate(_without_tree_sizes(t)), "tree 0"),
    (None, _blank_line_duplicate, "tree 0"),
    (None, lambda t: t.replace("num_class=1\n", "num_class=30000000\n", 1), "num_class"),
    (None, lambda t: t.replace("is_linear=0", "is_linear=1", 1), "tree 0 is a linear tree"),
    (None, lambda t: t.replace("num_class=1\n", "num_class=1\nnum_class=1\n", 1),
     "num_class twice"),
    (3, lambda t: t.replace("num_class=3\n", "num_class=2\n", 1), "num_class=2"),
    (None, lambda t: t.replace("shrinkage=1\n", "shrinkage=1\nleaf_features=9\n", 1),
     "leaf_features"),
    (None, lambda t: t.replace("threshold=", "threshold= ", 1), "threshold does not hold"),
    (None, _without_tree_sizes, "re-save"),  # LightGBM writes tree_sizes
    (None, lambda t: t.replace("shrinkage=1\n", "shrinkage=1.0\n", 1),  # sizes now wrong
     "cannot be read by LightGBM"),
    (None, lambda t: t.replace("threshold=", "threshold=x", 1), "cannot be read by LightGBM"),
]


@pytest.mark.parametrize(("classes", "edit", "words"), CRAFTED)
def test_a_crafted_lightgbm_text_is_refused_before_it_is_loaded(classes, edit, words) -> None:
    model = _fitted(classes)
    model.model_ = edit(model.model_)
    data = sio.dumps(model)  # skops saves the text as is; nothing is loaded here
    with pytest.raises(ArtifactIntegrityError, match=words):
        check_imported_boosters(data, "crafted.skops")


@pytest.mark.parametrize("classes", [None, 2, 3])
def test_an_untouched_lightgbm_model_passes_the_check_and_predicts(classes) -> None:
    model = _fitted(classes)
    data = sio.dumps(model)
    check_imported_boosters(data, "good.skops")
    assert len(model.predict(np.zeros((2, 3)))) == 2


# review s9 H1: the header's `objective=` line carries its own num_class, which LightGBM's
# multiclass objectives use to convert each row's outputs in place: a regression text with
# `objective=multiclass num_class:50000000` passed the checks and LightGBM's byte-identical
# re-save, then crashed the server (SIGSEGV / heap corruption) on its first predict.
OBJECTIVES = [
    (None, lambda t: t.replace("objective=regression\n",
                               "objective=multiclass num_class:50000000\n", 1), "objective"),
    (None, lambda t: t.replace("objective=regression\n",
                               "objective=multiclassova num_class:1\n", 1), "objective"),
    (2, lambda t: t.replace("objective=binary sigmoid:1\n",
                            "objective=binary sigmoid:1 num_class:9\n", 1), "objective"),
    (3, lambda t: t.replace("objective=multiclass num_class:3\n",
                            "objective=multiclass num_class:300\n", 1), "objective"),
    (3, lambda t: t.replace("objective=multiclass num_class:3\n",
                            "objective=regression\n", 1), "objective"),
    (None, lambda t: t.replace("label_index=0\n", "label_index=0\naverage_output=1\n", 1),
     "header has keys"),
]


@pytest.mark.parametrize(("classes", "edit", "words"), OBJECTIVES)
def test_an_objective_converting_more_outputs_than_the_trees_is_refused(classes, edit,
                                                                          words) -> None:
    model = _fitted(classes)
    edited = edit(model.model_)
    assert edited != model.model_
    model.model_ = edited
    with pytest.raises(ArtifactIntegrityError, match=words):
        check_imported_boosters(sio.dumps(model), "crafted.skops")
